import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { KadDHT } from '@libp2p/kad-dht'
import type { GatewayAddresses } from './gateway-pool.js'

/** A gateway may be given by several addresses (UDP overlay and TCP); one link per gateway peer id. */
export function groupGatewayAddresses (gateways: string[]): GatewayAddresses[] {
  const byPeer = new Map<string, GatewayAddresses>()
  for (const address of gateways) {
    const ma = multiaddr(address)
    const id = ma.getComponents().findLast(c => c.name === 'p2p')?.value
    if (id == null) throw new Error(`gateway address ${address} has no /p2p/<peer id>`)
    const group = byPeer.get(id) ?? { gateway: peerIdFromString(id), addresses: [] }
    group.addresses.push(ma)
    byPeer.set(id, group)
  }
  return [...byPeer.values()]
}

/** The gateways are the DHT's servers (peers are clients): the ones closest to our id are the ones to use. */
export async function discoverGateways (node: Libp2p<{ dht: KadDHT }>, signal: AbortSignal): Promise<GatewayAddresses[]> {
  const found: PeerId[] = []
  for await (const event of node.services.dht.getClosestPeers(node.peerId.toMultihash().bytes, { signal })) {
    if (event.name === 'FINAL_PEER') found.push(event.peer.id)
  }
  // a query's final peers come without addresses; what the gateways told us about each other is in the peer store
  return Promise.all(found.map(async gateway => {
    const addresses = await node.peerStore.get(gateway, { signal }).then(peer => peer.addresses.map(a => a.multiaddr), () => [])
    return { gateway, addresses }
  }))
}
