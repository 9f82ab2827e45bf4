import type { PunchStrategyKind } from '../punch-report/punch-reports.js'
import type { HolePunchCode, PunchCost } from '../dcutr/index.js'
/**
 * What a peer daemon reports about itself. The CLI prints these as JSON lines with `--json`; the NAT lab's trial
 * runner reads them, so fields are only ever added, never renamed.
 */
import type { OverlayTransport, Path } from '../core/path.js'
import type { WarningEvent } from '../core/events.js'
import type { IceEvent } from '../ice/events.js'
import type { NatTypeEvent } from '../nat/describe.js'
import type { StationEvent } from '../stations/publisher.js'

export type { OverlayTransport, Path } from '../core/path.js'

export type PeerEvent =
  | { event: 'started', peerId: string, mode: string, listenAddrs: string[] }
  | { event: 'gateway-connected', gateway: string, transport: OverlayTransport, remoteAddr: string }
  | { event: 'gateway-lost', gateway: string, reason: string, retryInMs: number }
  /** the gateway was reached but answered the RESERVE with `status` (e.g. RESERVATION_REFUSED when it is full) */
  | { event: 'reservation-refused', gateway: string, code: 'RESERVATION_REFUSED', status: string, reason: string, retryInMs: number }
  | { event: 'observed-address', gateway: string, address: string }
  /** a relay slot was reserved; relayAddrs are the addresses other peers dial to reach this one */
  | { event: 'reservation', gateway: string, relayAddrs: string[] }
  | { event: 'connection', peer: string, path: Path, remoteAddr: string, direction: 'inbound' | 'outbound' }
  | { event: 'connection-closed', peer: string, path: Path, remoteAddr: string }
  /** msSinceRelay: from the relayed connection opening to the direct one opening */
  | { event: 'hole-punch', peer: string, outcome: 'success' | 'failure' | 'skipped', attempts: number, msSinceRelay?: number, reason?: string, code?: HolePunchCode, remoteAddr?: string, strategy?: PunchStrategyKind, cost?: PunchCost }
  | { event: 'ping', peer: string, path: Path, rttMs: number }
  /** a gateway learnt from the DHT (gateways are its servers); it may be chosen when one of ours fails */
  | { event: 'gateway-discovered', gateway: string, addrs: string[] }
  /** a lost gateway was swapped for the healthiest unused ones (`by`; empty when none answered) */
  | { event: 'gateway-replaced', gateway: string, by: string[] }
  | { event: 'error', message: string }
  | IceEvent
  | NatTypeEvent
  | StationEvent
  | WarningEvent

export type PeerEventName = PeerEvent['event']
