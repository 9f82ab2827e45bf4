import type { PunchStrategyKind } from '../gateway/punch-reports.js'
import type { HolePunchCode, PunchCost } from './hole-punch/hole-puncher.js'
/**
 * What a peer daemon reports about itself. The CLI prints these as JSON lines with `--json`; the NAT lab's trial
 * runner reads them, so fields are only ever added, never renamed.
 */
import type { CandidateType } from './ice/selected-pair.js'

export type Path = 'relay' | 'direct'
export type OverlayTransport = 'udx' | 'tcp'

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
  /**
   * ice mode, the dialling side: how the WebRTC attempt after a relayed connection went. negotiationMs: the
   * WebRTC dial (signalling, ICE, DTLS, SCTP); msSinceRelay: from the relayed connection opening to now
   */
  | { event: 'ice', peer: string, outcome: 'success' | 'failure' | 'skipped', strategy: string, localNat: string, remoteNat: string, timeoutMs?: number, negotiationMs?: number, msSinceRelay?: number, candidateType?: CandidateType, remoteAddr?: string, reason?: string }
  /** a WebRTC connection (either direction) and the candidate pair ICE selected for it */
  | { event: 'ice-path', peer: string, candidateType: CandidateType, local: string, remote: string }
  | { event: 'warning', message: string }
  /** the NAT type detection result (see NatReport); publicAddress as "ip:port" */
  | { event: 'nat-type', natType: string, confidence: number, publicAddress?: string, mapping?: string, filtering?: string, portPreserved?: boolean, allocation?: string, allocationDelta?: number, hairpinning?: boolean, notes: string[] }
  /** a gateway learnt from the DHT (gateways are its servers); it may be chosen when one of ours fails */
  | { event: 'gateway-discovered', gateway: string, addrs: string[] }
  /** a lost gateway was swapped for the healthiest unused ones (`by`; empty when none answered) */
  | { event: 'gateway-replaced', gateway: string, by: string[] }
  /** gateways: how many of the DHT's closest gateways stored the record */
  | { event: 'station-published', name: string, seq: number, gateways: number, relayAddrs: string[] }
  | { event: 'station-withdrawn', name: string, gateways: number }
  | { event: 'error', message: string }

export type PeerEventName = PeerEvent['event']
