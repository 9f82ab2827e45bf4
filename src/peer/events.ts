/**
 * What a peer daemon reports about itself. The CLI prints these as JSON lines with `--json`; the NAT lab's trial
 * runner reads them, so fields are only ever added, never renamed. Each part of the peer reports through typed
 * events of its own; this union is where they become the public ones (the peer passes them on unchanged).
 */
import type { Path } from '../core/path.js'
import type { WarningEvent } from '../core/events.js'
import type { IceEvent } from '../ice/events.js'
import type { OwnNatEvent } from '../nat/own-nat.js'
import type { StationEvent } from '../stations/publisher.js'
import type { GatewayPoolEvent } from './gateway-pool.js'
import type { NetworkChangeEvent } from './network-change.js'
import type { ObservedAddressEvent } from './observed-addresses.js'
import type { PeerPathEvent } from './peer-paths.js'
import type { PunchPolicyEvent } from './punch-policy.js'

export type { OverlayTransport, Path } from '../core/path.js'

export type PeerEvent =
  | { event: 'started', peerId: string, mode: string, listenAddrs: string[] }
  | { event: 'ping', peer: string, path: Path, rttMs: number }
  | { event: 'error', message: string }
  | GatewayPoolEvent
  | ObservedAddressEvent
  | NetworkChangeEvent
  | PeerPathEvent
  | PunchPolicyEvent
  | IceEvent
  | OwnNatEvent
  | StationEvent
  | WarningEvent

export type PeerEventName = PeerEvent['event']
