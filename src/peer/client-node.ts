import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import type { KadDHT } from '@libp2p/kad-dht'
import type { Connection, Libp2p, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { stationDht } from '../stations/dht.js'
import { udxOverlay } from '../transport/index.js'
import { pingOver, PING_STREAMS } from '../core/ping-path.js'

export type ClientNode = Libp2p<{ identify: unknown, ping: unknown, dht: KadDHT }>

/**
 * A libp2p node for one-off commands (`lookup`, `doctor`): it dials gateways over the UDP overlay or TCP and
 * speaks the station DHT as a client, and nothing else: no reservation, no NAT detection, no hole punching.
 */
export async function createClientNode (privateKey: PrivateKey): Promise<ClientNode> {
  return createLibp2p({
    privateKey,
    // the overlay dials from its one listening socket; TCP dials need no listener
    addresses: { listen: ['/ip4/0.0.0.0/udp/0/udx'] },
    transports: [udxOverlay(), tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    services: {
      identify: identify(),
      ping: ping({ maxOutboundStreams: PING_STREAMS }),
      dht: stationDht({ role: 'client' })
    }
  }) as Promise<ClientNode>
}

/** Dials `address` itself (not whichever address libp2p prefers) and measures one ping over that connection. */
export async function dialAndPing (node: ClientNode, address: Multiaddr, timeoutMs: number): Promise<{ connection: Connection, rttMs: number }> {
  const connection = await node.dial(address, { signal: AbortSignal.timeout(timeoutMs), force: true })
  return { connection, rttMs: await pingOver(connection, timeoutMs) }
}
