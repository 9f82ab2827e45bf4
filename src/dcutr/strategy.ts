/**
 * How two peers try for a direct path, from what each knows of its own NAT's port mapping. Both sides compute
 * this from the same two CONNECT messages, so they always agree without another round trip.
 */
import { changesPortPerDestination as changing } from '../nat/mapping-profile.js'
import type { NatMappingProfile } from '../nat/mapping-profile.js'

export type Side = 'initiator' | 'responder'

export type PunchStrategy =
  | { kind: 'dcutr' }
  /**
   * The `sprayer` (behind the port-changing NAT) opens many sockets that all send to the other side's known
   * mapping; the other side probes ports on the sprayer's public IP, predicted ones first when the sprayer's NAT
   * allocates sequentially. The first two-way exchange wins.
   */
  | { kind: 'birthday', sprayer: Side, predictedDelta?: number }
  | { kind: 'skip', reason: string }

/**
 * `birthdayAgreed`: the initiator's CONNECT offered a probe token and the responder's echoed it, i.e. both may
 * run a birthday punch now (neither has it turned off or its attempt budget for the other spent).
 */
export function choosePunchStrategy (initiator: NatMappingProfile, responder: NatMappingProfile, birthdayAgreed: boolean): PunchStrategy {
  if (changing(initiator) && changing(responder)) {
    return {
      kind: 'skip',
      reason: `both NATs pick a new port per destination (${initiator.kind} and ${responder.kind}): no punch can meet, the relay carries this pair`
    }
  }
  // an open side is reached by a plain dial from the other; an unknown one gets the plain DCUtR attempt
  if (initiator.kind === 'open' || responder.kind === 'open') return { kind: 'dcutr' }
  const sprayer: Side | undefined = changing(initiator) && responder.kind === 'endpoint-independent'
    ? 'initiator'
    : changing(responder) && initiator.kind === 'endpoint-independent' ? 'responder' : undefined
  if (sprayer === undefined) return { kind: 'dcutr' }
  if (!birthdayAgreed) return { kind: 'skip', reason: 'a birthday punch is needed, but one side has it turned off or its attempt budget spent: staying on the relay' }
  const profile = sprayer === 'initiator' ? initiator : responder
  return profile.kind === 'sequential' && profile.delta != null && profile.delta !== 0
    ? { kind: 'birthday', sprayer, predictedDelta: profile.delta }
    : { kind: 'birthday', sprayer }
}
