/**
 * DCUtR hole punching over the UDP overlay (today's natmesh hole punch): the spec's exchange over a relayed
 * connection (exchange.ts), our half of the punch, plain or birthday (punch-dialer.ts, birthday.ts), the
 * strategy both sides derive from their NAT mappings (strategy.ts), and the outcome with its cost and failure
 * code (outcome.ts, errors.ts). The service that ties them to libp2p, with its Init and Components, is
 * hole-puncher.ts (they live beside the class: this file imports it, so it cannot be imported back).
 */
import { HolePuncher } from './hole-puncher.js'
import type { HolePunchComponents, HolePuncherInit } from './hole-puncher.js'

export { DCUTR_PROTOCOL } from './constants.js'
export { HolePunchError, type HolePunchCode } from './errors.js'
export type { HolePunchOutcome, HolePuncherEvents, PunchCost, PunchPhase } from './outcome.js'
export type { Clock } from './clock.js'
export type { HolePuncher, HolePunchComponents, HolePuncherInit }

export function holePuncher (init: HolePuncherInit): (components: HolePunchComponents) => HolePuncher {
  return (components) => new HolePuncher(components, init)
}
