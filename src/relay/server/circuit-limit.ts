import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import type { Connection, ConnectionGater, PeerId } from '@libp2p/interface'
import { FORWARD_HOP_PROTOCOLS } from '../forward/messages.js'

/**
 * Relayed connections open through these connections: each holds one inbound hop stream for its lifetime, a
 * circuit relay one or a forwarded circuit's.
 */
export function openCircuits (connections: Connection[]): number {
  return connections
    .flatMap(conn => conn.streams)
    .filter(stream => (stream.protocol === RELAY_V2_HOP_CODEC || FORWARD_HOP_PROTOCOLS.includes(stream.protocol ?? '')) && stream.direction === 'inbound' && stream.status === 'open')
    .length
}

/**
 * Limits open relayed connections per source peer across all of its connections to the gateway. The relay
 * server's own knob (maxInboundHopStreams) counts per connection, so a peer with a UDP and a TCP connection
 * would get twice the circuits, and it also counts reservation renewals, which must never be refused for
 * that reason. The relay server asks this gate before it creates a circuit (it answers PERMISSION_DENIED).
 */
export function circuitsPerPeerGate (maxCircuitsPerPeer: number, connections: (peer: PeerId) => Connection[]): Required<Pick<ConnectionGater, 'denyOutboundRelayedConnection'>> {
  return {
    denyOutboundRelayedConnection: (source) => {
      // the hop stream asking for this circuit is already open, hence ">"
      return openCircuits(connections(source)) > maxCircuitsPerPeer
    }
  }
}
