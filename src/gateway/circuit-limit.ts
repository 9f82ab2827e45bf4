import type { Connection, ConnectionGater, PeerId } from '@libp2p/interface'
import { HOP_PROTOCOL } from './relayed-bytes.js'

/**
 * Limits open relayed connections per source peer across all of its connections to the gateway. The relay
 * server's own knob (maxInboundHopStreams) counts per connection, so a peer with a UDP and a TCP connection
 * would get twice the circuits, and it also counts reservation renewals, which must never be refused for
 * that reason. The relay server asks this gate before it creates a circuit (it answers PERMISSION_DENIED).
 */
export function circuitsPerPeerGate (maxCircuitsPerPeer: number, connections: (peer: PeerId) => Connection[]): Pick<ConnectionGater, 'denyOutboundRelayedConnection'> {
  return {
    denyOutboundRelayedConnection: (source) => {
      // the hop stream asking for this circuit is already open, hence ">"
      const open = connections(source)
        .flatMap(conn => conn.streams)
        .filter(stream => stream.protocol === HOP_PROTOCOL && stream.direction === 'inbound' && stream.status === 'open')
        .length
      return open > maxCircuitsPerPeer
    }
  }
}
