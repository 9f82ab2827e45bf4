/** What a pair of NAT flavours should do in the lab, and what a run of trials did. */
import type { NatFlavour } from './nat.js'
import type { TrialResult } from './trial-result.js'
import { median, percentile } from './trial-stats.js'

export interface TrialSummary {
  a: NatFlavour
  b: NatFlavour
  trials: number
  /** counts */
  relayOk: number
  directOk: number
  /** over the trials that went direct; null when none did */
  medianMsRelayToDirect: number | null
  p95MsRelayToDirect: number | null
}

/**
 * Whether a hole punch can give A and B a direct path: neither side may block UDP, and two symmetric NATs never
 * meet (each picks a new random port per destination, so the peers skip the punch). One symmetric NAT is crossed:
 * by a plain dial when the other side is public, by a birthday punch when it is behind a cone NAT.
 */
export function punchExpected (a: NatFlavour, b: NatFlavour): boolean {
  if (a === 'udp-blocked' || b === 'udp-blocked') return false
  return !(a === 'symmetric' && b === 'symmetric')
}

/** one short attempt: a pair that cannot punch ends its trial in well under a second after the relay ping */
export const FAST_FAIL_PEER_ARGS: readonly string[] = ['--hole-punch-timeout-ms', '500', '--hole-punch-retries', '1']

/** Peer arguments that keep a trial short: the defaults where a punch should work, one short attempt where it cannot. */
export function recommendedPeerArgs (a: NatFlavour, b: NatFlavour): string[] {
  return punchExpected(a, b) ? [] : [...FAST_FAIL_PEER_ARGS]
}

export function summarize (a: NatFlavour, b: NatFlavour, results: readonly TrialResult[]): TrialSummary {
  const ms = results.filter((r) => r.directOk && r.msRelayToDirect !== undefined).map((r) => r.msRelayToDirect as number)
  return {
    a,
    b,
    trials: results.length,
    relayOk: results.filter((r) => r.relayOk).length,
    directOk: results.filter((r) => r.directOk).length,
    medianMsRelayToDirect: median(ms) ?? null,
    p95MsRelayToDirect: percentile(ms, 95) ?? null
  }
}
