/**
 * What a peer daemon reports about itself. The CLI prints these as JSON lines with `--json`; the NAT lab's trial
 * runner reads them, so fields are only ever added, never renamed.
 */
export type Path = 'relay' | 'direct'
export type OverlayTransport = 'udx' | 'tcp'

export type PeerEvent =
  | { event: 'started', peerId: string, mode: string, listenAddrs: string[] }
  | { event: 'gateway-connected', gateway: string, transport: OverlayTransport, remoteAddr: string }
  | { event: 'gateway-lost', gateway: string, reason: string, retryInMs: number }
  | { event: 'observed-address', gateway: string, address: string }
  /** a relay slot was reserved; relayAddrs are the addresses other peers dial to reach this one */
  | { event: 'reservation', gateway: string, relayAddrs: string[] }
  | { event: 'connection', peer: string, path: Path, remoteAddr: string, direction: 'inbound' | 'outbound' }
  | { event: 'connection-closed', peer: string, path: Path, remoteAddr: string }
  /** msSinceRelay: from the relayed connection opening to the direct one opening */
  | { event: 'hole-punch', peer: string, outcome: 'success' | 'failure' | 'skipped', attempts: number, msSinceRelay?: number, reason?: string, remoteAddr?: string }
  | { event: 'ping', peer: string, path: Path, rttMs: number }
  /** a gateway learnt from the DHT (gateways are its servers); it may be chosen when one of ours fails */
  | { event: 'gateway-discovered', gateway: string, addrs: string[] }
  /** a lost gateway was swapped for the healthiest unused ones (`by`; empty when none answered) */
  | { event: 'gateway-replaced', gateway: string, by: string[] }
  /** gateways: how many of the DHT's closest gateways stored the record */
  | { event: 'station-published', name: string, seq: number, gateways: number, relayAddrs: string[] }
  | { event: 'station-withdrawn', name: string, gateways: number }
  | { event: 'error', message: string }

export type PeerEventName = PeerEvent['event']
