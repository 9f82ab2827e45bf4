import type { Connection, Libp2p } from '@libp2p/interface'
import { isRelayed } from '../core/relay-address.js'
import type { HolePunchCode, HolePunchOutcome, PunchCost, PunchPhase } from '../dcutr/index.js'
import type { NatMappingProfile } from '../nat/mapping-profile.js'
import type { NatType } from '../nat/types.js'
import { sendPunchReport } from '../punch-report/client.js'
import type { PunchStrategyKind } from '../punch-report/wire.js'
import type { ConnectionStats } from './connection-stats.js'

export type PunchPolicyEvent =
  /** msSinceRelay: from the relayed connection opening to the direct one opening; phases: the steps in between (ms since the same) */
  | { event: 'hole-punch', peer: string, outcome: 'success' | 'failure' | 'skipped', attempts: number, msSinceRelay?: number, phases?: Partial<Record<PunchPhase, number>>, reason?: string, code?: HolePunchCode, remoteAddr?: string, strategy?: PunchStrategyKind, cost?: PunchCost }
  | { event: 'error', message: string }

export interface PunchPolicyInit {
  node: Libp2p
  stats: ConnectionStats
  /** natTraversal.fallbackToRelay: off, a relayed connection that could not be upgraded is closed */
  fallbackToRelay: boolean
  /** an open connection to one of our gateways, which takes the punch report */
  gatewayConnection: () => Connection | undefined
  natMapping: () => Promise<NatMappingProfile>
  /** our NAT type, once the detection under way (if any) is done: a punch may finish before it */
  natType: () => Promise<NatType | undefined>
  emit: (event: PunchPolicyEvent) => void
}

/**
 * What follows a finished hole punch: it is counted and reported (as an event, and to a gateway for its
 * metrics), and under the direct-only policy the relayed connection it could not replace is closed.
 */
export class PunchPolicy {
  private readonly init: PunchPolicyInit

  constructor (init: PunchPolicyInit) {
    this.init = init
  }

  finished (outcome: HolePunchOutcome): void {
    const { node, emit } = this.init
    const peer = outcome.peer.toString()
    const msSinceRelay = outcome.msSinceRelay == null ? undefined : Math.max(0, outcome.msSinceRelay)
    this.init.stats.holePunch(peer, outcome.attempts, msSinceRelay, { outcome: outcome.outcome, strategy: outcome.strategy, code: outcome.code, reason: outcome.reason, cost: outcome.cost })
    emit({
      event: 'hole-punch',
      peer,
      outcome: outcome.outcome,
      attempts: outcome.attempts,
      ...(msSinceRelay != null ? { msSinceRelay } : {}),
      ...(outcome.phases != null ? { phases: outcome.phases } : {}),
      ...(outcome.reason != null ? { reason: outcome.reason } : {}),
      ...(outcome.code != null ? { code: outcome.code } : {}),
      ...(outcome.direct != null ? { remoteAddr: outcome.direct.remoteAddr.toString() } : {}),
      ...(outcome.strategy != null ? { strategy: outcome.strategy } : {}),
      ...(outcome.cost != null ? { cost: outcome.cost } : {})
    })
    if (outcome.outcome === 'failure' && !this.init.fallbackToRelay) {
      for (const conn of node.getConnections(outcome.peer)) {
        if (isRelayed(conn.remoteAddr)) void conn.close().catch(() => {})
      }
      emit({ event: 'error', message: `no direct path to ${peer} and fallbackToRelay is off: relayed connection closed` })
    }
    this.report(outcome, msSinceRelay)
  }

  private report (outcome: HolePunchOutcome, msSinceRelay: number | undefined): void {
    const gateway = this.init.gatewayConnection()
    if (gateway == null) return
    Promise.all([this.init.natMapping(), this.init.natType()]).then(async ([mapping, natType]) => sendPunchReport(gateway, {
      outcome: outcome.outcome,
      attempts: outcome.attempts,
      msSinceRelay,
      strategy: outcome.strategy,
      sockets: outcome.cost?.sockets,
      probes: outcome.cost == null ? undefined : outcome.cost.probes + outcome.cost.sprays,
      durationMs: outcome.cost?.ms,
      mapping: mapping.kind,
      natType,
      remotePeer: outcome.peer.toString()
    })).catch(() => {
      // metrics only: a gateway that can't take the report must not disturb the peer
    })
  }
}
