/**
 * DCUtR hole punching over the UDP overlay (today's natmesh hole punch): the spec's exchange over a relayed
 * connection (exchange.ts), our half of the punch, plain or birthday (punch-dialer.ts, birthday.ts), the
 * strategy both sides derive from their NAT mappings (strategy.ts), and the outcome with its cost and failure
 * code (outcome.ts, errors.ts). The service that ties them to libp2p is hole-puncher.ts.
 */
import { HolePuncher } from './hole-puncher.js'
import type { BirthdaySettings } from './birthday.js'
import type { Clock } from './clock.js'
import type { NatMappingProfile } from '../nat/mapping-profile.js'
import type { ComponentLogger, Libp2pEvents, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager, Registrar, TransportManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

export { DCUTR_PROTOCOL } from './constants.js'
export { HolePunchError, type HolePunchCode } from './errors.js'
export type { HolePunchOutcome, HolePuncherEvents, PunchCost } from './outcome.js'
export type { HolePuncher }

export interface HolePuncherInit {
  /**
   * How long one attempt may take, from CONNECT to a direct connection, in ms
   *
   * @default 5000
   */
  timeoutMs?: number
  /**
   * Attempts per relayed connection
   *
   * @default 3
   */
  retries?: number
  /**
   * How often the SYNC sender sends punch datagrams, in ms
   *
   * @default 25
   */
  punchIntervalMs?: number
  /**
   * Punch to private addresses too (peers on one LAN, loopback)
   *
   * @default false
   */
  allowPrivateAddresses?: boolean
  /** This node's public UDP overlay addresses, as observed by its gateways (trusted, no AutoNAT round) */
  publicAddresses: () => Multiaddr[]
  /**
   * How this node's NAT maps ports, as far as it knows; decides plain DCUtR, birthday punch or none
   *
   * @default async () => ({ kind: 'unknown' })
   */
  natMapping?: () => Promise<NatMappingProfile>
  /**
   * Whether and within which bounds to birthday punch (see BirthdaySettings for each bound's default)
   *
   * @default { enabled: true, ...BIRTHDAY_DEFAULTS }
   */
  birthday?: Partial<BirthdaySettings> & { enabled?: boolean }
  /**
   * The time the punch sees (the relay's round trip, the wait before the punch, costs); tests script their own
   *
   * @default systemClock (Date.now and setTimeout)
   */
  clock?: Clock
}

export interface HolePunchComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
  transportManager: TransportManager
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

export function holePuncher (init: HolePuncherInit): (components: HolePunchComponents) => HolePuncher {
  return (components) => new HolePuncher(components, init)
}
