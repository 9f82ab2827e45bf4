import { multiaddr } from '@multiformats/multiaddr'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { isUdxMultiaddr } from '../../transport/index.js'

/** What natmesh touches of the relay server's private reservation maker. */
interface ReservationMaker {
  makeReservation: (peer: PeerId, expire: bigint) => Promise<{ addrs: Uint8Array[] }>
}

/**
 * Lists the gateway's /udx addresses in a reservation only to peers that speak the overlay: those connected over
 * it, or whose identify named a /udx listen address. A client parses every listed address, and a stock libp2p
 * one knows no /udx (a private multicodec): it rejects the whole reservation with UnknownProtocolError. The relay
 * server builds the list from all of the gateway's addresses and offers no hook, hence the wrapper.
 */
export function listUdxOnlyToOverlayPeers (relay: CircuitRelayService, node: Libp2p): void {
  const maker = relay as unknown as Partial<ReservationMaker>
  if (typeof maker.makeReservation !== 'function') {
    throw new Error('this @libp2p/circuit-relay-v2 version has no reservation maker natmesh can work with')
  }
  const make = maker.makeReservation.bind(relay)
  maker.makeReservation = async (peer, expire) => {
    const reservation = await make(peer, expire)
    if (await speaksUdx(node, peer)) return reservation
    return { ...reservation, addrs: reservation.addrs.filter(bytes => !isUdxMultiaddr(multiaddr(bytes))) }
  }
}

async function speaksUdx (node: Libp2p, peer: PeerId): Promise<boolean> {
  if (node.getConnections(peer).some(conn => isUdxMultiaddr(conn.remoteAddr))) return true
  try {
    const known = await node.peerStore.get(peer)
    return known.addresses.some(address => isUdxMultiaddr(address.multiaddr))
  } catch {
    return false // not identified (yet)
  }
}
