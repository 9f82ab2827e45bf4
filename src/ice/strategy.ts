import { NAT_TYPES as DETECTED_NAT_TYPES } from '../nat/types.js'

/**
 * Which way to connect two peers, from their NAT types (the Tallow design): both sides reachable by a hole →
 * `direct` (ICE with STUN only); one symmetric or unknown side → `turn-fallback` (ICE with STUN and TURN: the
 * direct pair wins when it works, the TURN relay carries the data when it does not); both symmetric → `turn-only`
 * (only TURN relay candidates: a srflx pair cannot work); UDP blocked on either side → `relay` (ICE cannot run
 * at all: libjuice is UDP only, so the peers stay on the gateway's libp2p relay over TCP).
 */

/** the NAT types detection reports (src/nat), and `unknown` when it has not (yet) */
export const NAT_TYPES = [...DETECTED_NAT_TYPES, 'unknown'] as const
export type NatType = typeof NAT_TYPES[number]

export const STRATEGIES = ['direct', 'turn-fallback', 'turn-only', 'relay'] as const
export type Strategy = typeof STRATEGIES[number]

export function isNatType (value: unknown): value is NatType {
  return typeof value === 'string' && (NAT_TYPES as readonly string[]).includes(value)
}

export function chooseStrategy (local: NatType, remote: NatType): Strategy {
  if (local === 'udp-blocked' || remote === 'udp-blocked') return 'relay'
  if (local === 'symmetric' && remote === 'symmetric') return 'turn-only'
  if (local === 'symmetric' || remote === 'symmetric' || local === 'unknown' || remote === 'unknown') return 'turn-fallback'
  return 'direct'
}

/** what an ICE attempt of a strategy may gather: STUN candidates, TURN relay candidates, or only the latter */
export function candidatePolicy (strategy: Exclude<Strategy, 'relay'>): { stun: boolean, turn: boolean } {
  switch (strategy) {
    case 'direct': return { stun: true, turn: false }
    case 'turn-fallback': return { stun: true, turn: true }
    case 'turn-only': return { stun: false, turn: true }
  }
}
