import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import type { KadDHT } from '@libp2p/kad-dht'
import type { ComponentLogger, Libp2p, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { PeerConfig } from '../config/index.js'
import { PING_STREAMS, YAMUX_PING_MS } from '../core/ping-path.js'
import { holePuncher } from '../dcutr/index.js'
import type { HolePuncher } from '../dcutr/index.js'
import type { IceMode } from '../ice/ice-mode.js'
import { MAX_TIMEOUT_MS } from '../ice/strategy-history.js'
import type { NatMappingProfile } from '../nat/mapping-profile.js'
import { CompactMemoryDatastore } from '../stations/compact-datastore.js'
import { stationDht } from '../stations/dht.js'
import { forwardedCircuits } from '../relay/forward/client.js'
import { PATH_CADENCE, udxOverlay, udxPaths } from '../transport/index.js'
import type { UdxPaths } from '../transport/index.js'
import { addressDialer } from '../transport/address-dialer.js'
import type { AddressDialer } from '../transport/address-dialer.js'
import { abortStreamsOnReset } from './stream-muxer.js'

export type PeerServices = { holePuncher?: HolePuncher, identify: unknown, ping: unknown, dht: KadDHT, addressDialer: AddressDialer, udxPaths: UdxPaths }

/** inbound connections a second from one IP: every circuit through a gateway comes from its IP (libp2p allows 5) */
const INBOUND_CONNECTIONS_PER_IP_PER_SECOND = 100
/** inbound connections being upgraded (Noise, muxer) at once */
const MAX_INBOUND_UPGRADES = 64

export interface PeerNodeInit {
  privateKey: PrivateKey
  logger: ComponentLogger
  /** ice mode's parts (its transport); absent in the other modes */
  ice?: IceMode
  /** what the hole puncher offers and decides by: our observed public addresses and our NAT's mapping */
  punch: { publicAddresses: (signal: AbortSignal) => Promise<Multiaddr[]>, natMapping: () => Promise<NatMappingProfile> }
}

/** The peer's libp2p node, not started: the transports, the DHT client and (in opportunistic mode) the hole puncher. */
export async function createPeerNode (config: PeerConfig, init: PeerNodeInit): Promise<Libp2p<PeerServices>> {
  const { ice } = init
  const holePunching = config.mode === 'opportunistic' && config.natTraversal.enabled
  const node: Libp2p<PeerServices> = await createLibp2p({
    privateKey: init.privateKey,
    start: false,
    logger: init.logger,
    // the DHT keeps a copy of every station record this peer publishes
    datastore: new CompactMemoryDatastore(),
    addresses: {
      listen: [`/ip4/${config.host}/udp/${config.udpPort}/udx`, `/ip4/${config.host}/tcp/${config.tcpPort}`]
    },
    transports: [
      // a gateway or peer that vanishes without closing (power loss, SIGKILL, a cut path) is noticed from its
      // silence, and the connection aborted: relayed sessions through that gateway resume through another one, a
      // lost direct path falls back to the relay. Gateway links slow down while idle (see link-cadence.ts)
      udxOverlay({ dialTimeoutMs: config.natTraversal.holePunchTimeoutMs, ...PATH_CADENCE.active }),
      tcp(),
      // before circuit relay: relayed dials over a UDP overlay gateway connection become forwarded circuits, whose
      // gateways tell a punching peer where the other one is mapped before the circuit's handshake is done
      forwardedCircuits(holePunching && config.natTraversal.earlyDial ? { punchEarly: (peer, at, since) => { node.services.holePuncher?.punchEarly(peer, at, since) } } : {}),
      circuitRelayTransport(),
      ...(ice != null ? [ice.transport()] : [])
    ],
    connectionEncrypters: [noise()],
    streamMuxers: [abortStreamsOnReset(yamux({ keepAliveInterval: YAMUX_PING_MS }))],
    // gateways and lab peers may sit on private addresses; what to dial is decided by config, not by range
    connectionGater: { denyDialMultiaddr: () => false },
    // libp2p's monitor opens a ping stream on every connection every 10 s, for nothing natmesh reads (it never
    // aborted on a failed one: that took down healthy relayed connections now and then): at 1,000 peers, 100
    // ping streams a second at their gateway. Dead paths are found by the transports' keepalives and by the
    // sessions' own heartbeats, which then resume on another path; the gateway pool measures its gateways' RTT
    connectionMonitor: { enabled: false },
    connectionManager: {
      // every relayed connection comes from its gateway's IP, so libp2p's 5 a second per IP refused the sixth
      // circuit to open through one gateway within a second (a burst of sessions or station visitors)
      inboundConnectionThreshold: INBOUND_CONNECTIONS_PER_IP_PER_SECOND,
      // and libp2p's 10 upgrades in flight in all dropped the rest of such a burst unanswered
      maxIncomingPendingConnections: MAX_INBOUND_UPGRADES,
      // an ICE attempt may take up to the strategy's longest adaptive timeout, on both sides of it
      ...(ice != null ? { addressDialTimeout: MAX_TIMEOUT_MS, dialTimeout: MAX_TIMEOUT_MS, inboundUpgradeTimeout: MAX_TIMEOUT_MS } : {})
    },
    services: {
      identify: identify(),
      // one ping stream per connection (libp2p's default) is too few once the DHT vets a new gateway while the
      // gateway pool checks its health: the DHT's ping failed and the gateway never entered its routing table
      ping: ping({ maxOutboundStreams: PING_STREAMS }),
      dht: stationDht({ role: 'client' }),
      addressDialer: addressDialer(),
      udxPaths: udxPaths(),
      ...(holePunching
        ? {
            holePuncher: holePuncher({
              timeoutMs: config.natTraversal.holePunchTimeoutMs,
              retries: config.natTraversal.holePunchRetries,
              allowPrivateAddresses: config.natTraversal.allowPrivateAddresses,
              publicAddresses: init.punch.publicAddresses,
              natMapping: init.punch.natMapping,
              birthday: config.natTraversal.birthday
            })
          }
        : {})
    }
  }) as Libp2p<PeerServices>
  return node
}
