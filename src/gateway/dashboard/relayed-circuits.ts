import { RELAY_V2_HOP_CODEC, RELAY_V2_STOP_CODEC } from '@libp2p/circuit-relay-v2'
import { FORWARD_HOP_PROTOCOLS, FORWARD_STOP_PROTOCOLS } from '../../relay/forward/messages.js'
import type { Connection, PeerId } from '@libp2p/interface'

export interface RelayedCircuit {
  source: string
  destination: string
  openedAt: string
}

interface Entry {
  source: PeerId
  destination: PeerId
  openedAt: number
}

/** circuits remembered at most; more than any gateway carries (maxReservations × maxCircuitsPerPeer by default is 16 Ki) */
const MAX_CIRCUITS = 20_000

/**
 * Which relayed connections this gateway carries, source to destination. The relay server keeps no list: the
 * connection gater learns each pair when a circuit is asked for, and a circuit counts as open while its source
 * still holds an open inbound hop stream and its destination an open outbound stop stream.
 */
export class RelayedCircuits {
  private entries: Entry[] = []

  /** the gater let a circuit from `source` to `destination` through */
  opened (source: PeerId, destination: PeerId, now = Date.now()): void {
    this.entries.push({ source, destination, openedAt: now })
    if (this.entries.length > MAX_CIRCUITS) this.entries.splice(0, this.entries.length - MAX_CIRCUITS)
  }

  /** the circuits still open, newest first; forgets the others */
  current (connectionsOf: (peer: PeerId) => Connection[]): RelayedCircuit[] {
    const hops = new Map<string, number>()
    const stops = new Map<string, number>()
    const count = (counts: Map<string, number>, peer: PeerId, protocols: string[], direction: 'inbound' | 'outbound'): number => {
      const key = peer.toString()
      let n = counts.get(key)
      if (n == null) {
        n = connectionsOf(peer).flatMap(conn => conn.streams)
          .filter(stream => stream.protocol != null && protocols.includes(stream.protocol) && stream.direction === direction && stream.status === 'open').length
        counts.set(key, n)
      }
      return n
    }
    // newest first: when a peer has fewer open streams than recorded circuits, its oldest ones are the ones that ended
    const kept = [...this.entries].reverse().filter(entry => {
      const source = count(hops, entry.source, [RELAY_V2_HOP_CODEC, ...FORWARD_HOP_PROTOCOLS], 'inbound')
      const destination = count(stops, entry.destination, [RELAY_V2_STOP_CODEC, ...FORWARD_STOP_PROTOCOLS], 'outbound')
      if (source === 0 || destination === 0) return false
      hops.set(entry.source.toString(), source - 1)
      stops.set(entry.destination.toString(), destination - 1)
      return true
    })
    this.entries = [...kept].reverse()
    return kept.map(entry => ({ source: entry.source.toString(), destination: entry.destination.toString(), openedAt: new Date(entry.openedAt).toISOString() }))
  }
}
