import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { multiaddr } from '@multiformats/multiaddr'
import { startInOrder } from '../core/start-in-order.js'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { KadDHT } from '@libp2p/kad-dht'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import type { Registry } from 'prom-client'
import type { GatewayConfig } from '../config/index.js'
import type { Logger } from '../core/logging.js'
import { libp2pLogger } from '../core/libp2p-logger.js'
import { PATH_CADENCE, udxOverlay } from '../transport/index.js'
import { ObservedAddressBook, observeConnections } from './address-book.js'
import { startHttpApi } from './http-api.js'
import type { HttpApi } from './http-api.js'
import { createDaemonRegistry } from '../metrics/registry.js'
import { PunchHistory } from './dashboard/punch-history.js'
import { RelayedCircuits } from './dashboard/relayed-circuits.js'
import { dashboardSnapshot } from './dashboard/snapshot.js'
import type { DashboardSnapshot } from './dashboard/snapshot.js'
import { explainListenFailure } from './listen-error.js'
import type { ListenSetting } from './listen-error.js'
import { GatewayMetrics } from './metrics.js'
import { punchReports } from '../punch-report/server.js'
import type { PunchReports } from '../punch-report/server.js'
import { relayedBytes } from '../relay/server/relayed-bytes.js'
import { allowUnlimitedCircuits } from '../relay/server/relay-allowlist.js'
import { forwardServer } from '../relay/forward/server.js'
import type { ForwardServer } from '../relay/forward/server.js'
import { reservationStoreOf } from '../relay/server/reservation-store.js'
import { listUdxOnlyToOverlayPeers } from '../relay/server/reservation-addresses.js'
import { releaseReservationsOfDepartedPeers, renewReservationsProperly, shareReservationsFairly } from '../relay/server/reservation-store.js'
import { pendingConnectionsPerIpGate } from '../relay/server/admission.js'
import { circuitsPerPeerGate, openCircuits } from '../relay/server/circuit-limit.js'
import { spliceCircuitsWithBackpressure } from '../relay/server/connect.js'
import { RelayBuffers } from '../relay/server/splice.js'
import { registerStunMetrics } from '../stun/metrics.js'
import { StunServer } from '../stun/server.js'
import { gatewayIceServers } from './ice-servers-directory.js'
import type { IceServersDirectory } from './ice-servers-directory.js'
import { iceServersProtocol } from '../ice-servers/server.js'
import type { IceServersRouteInit } from '../ice-servers/route.js'
import { identityOf } from '../turn/coturn/credentials.js'
import { TurnMetrics } from '../turn/coturn/turn-metrics.js'
import { TurnService } from '../turn/coturn/turn-service.js'
import { StationClaims } from '../stations/claims.js'
import { CompactMemoryDatastore } from '../stations/compact-datastore.js'
import { DhtBootstrap } from '../stations/dht-bootstrap.js'
import { stationDht } from '../stations/dht.js'
import { PING_STREAMS, YAMUX_PING_MS } from '../core/ping-path.js'

/**
 * The most a gateway stream lets its sender have in flight (yamux grows windows up to 16 MiB by default). A
 * relayed circuit is two such streams, so this also caps what a circuit holds at the gateway, and how much of a
 * peer's relayed data queues ahead of its pings.
 */
const STREAM_WINDOW_BYTES = 2 * 1024 * 1024

/**
 * A TCP peer that vanished without closing is found by the kernel's keepalive probes (from this much idle on,
 * then the system's interval and count: about 12 min with Linux defaults), at no cost to the event loop. udx
 * connections have their liveness watch.
 */
const TCP_KEEPALIVE_IDLE_MS = 60_000
/** peers the observed-address book remembers at least (see ObservedAddressBookInit.maxPeers) */
const DEFAULT_ADDRESS_BOOK_PEERS = 10_000

/** hop streams per connection beyond the circuit limit, so reservation renewals always get through */
const RESERVE_HEADROOM = 2

type GatewayServices = { relay: CircuitRelayService, forward: ForwardServer, punchReports: PunchReports, identify: unknown, ping: unknown, iceServers: unknown, dht: KadDHT }

/** how often a gateway checks that it still knows another gateway (else it dials its bootstrap list again) */
const BOOTSTRAP_CHECK_MS = 10_000

export interface CreateGatewayOptions {
  privateKey: PrivateKey
  logger: Logger
  /**
   * where /metrics reads from; libp2p's own metrics land in the same registry. Default: a new one of this
   * gateway's own, with the process defaults and natmesh_build_info
   */
  registry?: Registry
}

/** What createGateway builds for a Gateway */
interface GatewayParts {
  node: Libp2p<GatewayServices>
  config: GatewayConfig
  registry: Registry
  logger: Logger
  addressBook: ObservedAddressBook
  metrics: GatewayMetrics
  stun?: StunServer
  turn?: TurnService
  iceServers: IceServersDirectory
  listen: readonly ListenSetting[]
  circuits: RelayedCircuits
  punches: PunchHistory
  relayBuffers: RelayBuffers
}

/**
 * A gateway: a public libp2p node that relays (circuit v2), observes every peer's public address, takes
 * hole-punch reports and serves its state over HTTP (JSON API, /healthz, Prometheus /metrics). With TURN on it
 * also runs coturn, and it hands out ICE servers (STUN, TURN with fresh credentials) over libp2p and HTTP.
 */
export class Gateway {
  readonly node: Libp2p<GatewayServices>
  readonly addressBook: ObservedAddressBook
  /** coturn, when turn.enabled */
  readonly turn?: TurnService
  readonly iceServers: IceServersDirectory
  /** bytes the relay holds for its circuits (read buffers of paused sides, write buffers of full ones) */
  readonly relayBuffers: RelayBuffers
  private readonly turnMetrics?: TurnMetrics
  /** what createGateway made for it, the ones only the gateway itself uses read from here */
  private readonly parts: GatewayParts
  /** absent when stun.enabled is false */
  readonly stun?: StunServer
  private api?: HttpApi
  private stopObserving?: () => void
  private stopReleasing?: () => void
  private unregisterStunMetrics?: () => void
  private readonly bootstrap: DhtBootstrap
  private readonly startedAt = Date.now()

  constructor (parts: GatewayParts) {
    this.parts = parts
    ;({ node: this.node, addressBook: this.addressBook, turn: this.turn, iceServers: this.iceServers, relayBuffers: this.relayBuffers, stun: this.stun } = parts)
    this.turnMetrics = parts.turn == null ? undefined : new TurnMetrics(parts.registry, parts.turn)
    this.bootstrap = new DhtBootstrap({
      node: this.node,
      dht: this.node.services.dht,
      addresses: parts.config.bootstrap.map(address => multiaddr(address)),
      checkIntervalMs: BOOTSTRAP_CHECK_MS,
      log: this.node.logger.forComponent('natmesh:dht-bootstrap')
    })
  }

  get apiUrl (): string | undefined {
    return this.api?.url
  }

  /**
   * Starts TURN first, so the ICE servers protocol never hands out a TURN server that is not there yet, then the
   * node, STUN, the reservation and bootstrap timers and the HTTP API; when one fails, the ones started before it
   * are stopped and the error rethrown.
   */
  async start (): Promise<void> {
    await startInOrder([
      { start: async () => { await this.turn?.start() }, stop: async () => { await this.turn?.stop() } },
      {
        start: async () => {
          try {
            await this.node.start()
          } catch (err) {
            // a node that failed to listen on one address may listen on the others
            await Promise.resolve(this.node.stop()).catch(() => {})
            throw explainListenFailure(err, this.parts.listen)
          }
        },
        stop: async () => { await this.node.stop() }
      },
      {
        start: async () => {
          if (this.stun == null) return
          await this.stun.start()
          const stun = this.stun
          this.unregisterStunMetrics = registerStunMetrics(this.parts.registry, () => stun.stats())
        },
        stop: async () => {
          await this.stun?.stop()
          this.unregisterStunMetrics?.()
        }
      },
      {
        start: () => {
          this.stopObserving = observeConnections(this.node, this.addressBook)
          const graceMs = this.parts.config.relay.reservationGraceMs
          this.stopReleasing = releaseReservationsOfDepartedPeers(this.node, this.node.services.relay, graceMs, (peer) => {
            this.parts.logger.debug({ peer: peer.toString() }, `released the reservation of ${peer.toString()}: no connection for ${graceMs} ms`)
          })
          this.bootstrap.start()
        },
        stop: () => {
          this.bootstrap.stop()
          this.stopObserving?.()
          this.stopReleasing?.()
        }
      },
      {
        start: async () => {
          this.api = await startHttpApi({
            host: this.parts.config.api.host,
            port: this.parts.config.api.port,
            addressBook: this.addressBook,
            registry: this.parts.registry,
            info: () => ({ peerId: this.node.peerId.toString(), addresses: this.node.getMultiaddrs().map(String) }),
            logger: this.parts.logger.child({ component: 'http-api' }),
            iceServers: this.iceServersRoute(),
            ...(this.parts.config.api.dashboard ? { dashboard: async () => this.dashboard() } : {})
          })
        },
        stop: async () => { await this.api?.close() }
      }
    ])
  }

  /** what the dashboard shows: peers, their NATs, reservations, relayed circuits, paths and punch reports */
  async dashboard (): Promise<DashboardSnapshot> {
    return dashboardSnapshot({
      gateway: {
        peerId: this.node.peerId.toString(),
        addresses: this.node.getMultiaddrs().map(String),
        uptimeS: Math.floor((Date.now() - this.startedAt) / 1000),
        turn: this.turn == null ? 'off' : this.turn.pid == null ? 'down' : 'up'
      },
      peers: this.addressBook.list(),
      reservations: [...this.node.services.relay.reservations.entries()].map(([peer, reservation]) => ({ peer: peer.toString(), expiresAt: reservation.expiry.toISOString() })),
      circuits: this.parts.circuits.current(peer => this.node.getConnections(peer)),
      relayedBytes: await relayedBytes(this.parts.registry) + this.node.services.forward.forwardedBytes,
      ...(this.turn != null ? { turnAllocations: this.turn.sessions.map(session => identityOf(session.username) ?? session.username) } : {}),
      punches: this.parts.punches
    })
  }

  private iceServersRoute (): IceServersRouteInit | undefined {
    const { apiToken, rateLimit, corsOrigins } = this.parts.config.iceServers
    if (apiToken == null) {
      this.parts.logger.info('ICE servers HTTP endpoint off: no iceServers.apiToken (NATMESH_ICE_API_TOKEN) configured; peers still get them over libp2p')
      return undefined
    }
    return { token: apiToken, rateLimit, corsOrigins, serversFor: (identity) => this.iceServers.serversFor(identity) }
  }

  async stop (): Promise<void> {
    this.bootstrap.stop()
    await this.api?.close()
    this.stopObserving?.()
    this.stopReleasing?.()
    await this.stun?.stop()
    this.unregisterStunMetrics?.()
    await this.node.stop()
    await this.turn?.stop()
    this.parts.metrics.unregister()
    this.turnMetrics?.unregister()
  }
}

export async function createGateway (config: GatewayConfig, options: CreateGatewayOptions): Promise<Gateway> {
  const registry = options.registry ?? createDaemonRegistry()
  // each reservation is a connection, and a peer may hold a second one (a circuit's, a move to UDP)
  const maxConnections = Math.max(config.relay.maxReservations * 2, 300)
  // room for every peer the gateway may hold a connection to: a full book scans for a disconnected peer to forget
  // on every connection that opens
  const addressBook = new ObservedAddressBook({ maxPeers: Math.max(DEFAULT_ADDRESS_BOOK_PEERS, maxConnections) })
  let node: Libp2p<GatewayServices> | undefined
  const metrics = new GatewayMetrics({
    registry,
    reservations: () => node?.services.relay.reservations.size ?? 0,
    activeCircuits: () => openCircuits(node?.getConnections() ?? []),
    connectedPeers: () => addressBook.countConnected(),
    relayedBytes: async () => await relayedBytes(registry) + (node?.services.forward.forwardedBytes ?? 0),
    forwardedCircuits: () => node?.services.forward.circuitsOpened ?? { 'in-loop': 0, worker: 0 }
  })
  const turn = config.turn.enabled
    ? new TurnService({ config: config.turn, gatewayHost: config.host, announce: config.announce, logger: options.logger.child({ component: 'turn' }) })
    : undefined
  const stun = config.stun.enabled
    ? new StunServer({ ...config.stun, host: config.host, publicAddress: config.announce[0], logger: options.logger.child({ component: 'stun' }) })
    : undefined
  const iceServers = gatewayIceServers(config, turn, () => stun?.addresses()[0]?.port)
  const circuits = new RelayedCircuits()
  const punches = new PunchHistory()
  const circuitGate = circuitsPerPeerGate(config.relay.maxCircuitsPerPeer, (peer) => node?.getConnections(peer) ?? [])
  const announce = config.announce.flatMap(ip => {
    const family = ip.includes(':') ? 'ip6' : 'ip4'
    return [`/${family}/${ip}/udp/${config.udpPort}/udx`, `/${family}/${ip}/tcp/${config.tcpPort}`]
  })
  const listen: ListenSetting[] = [
    { multiaddr: `/ip4/${config.host}/udp/${config.udpPort}/udx`, what: 'UDP port', host: config.host, port: config.udpPort, flag: '--udp-port' },
    { multiaddr: `/ip4/${config.host}/tcp/${config.tcpPort}`, what: 'TCP port', host: config.host, port: config.tcpPort, flag: '--tcp-port' }
  ]
  node = await createLibp2p({
    privateKey: options.privateKey,
    start: false,
    logger: libp2pLogger(options.logger),
    // station records and peer data, in memory (records are republished by their owners)
    datastore: new CompactMemoryDatastore(),
    addresses: {
      listen: listen.map(setting => setting.multiaddr),
      // a gateway knows its public address from config; it must not wait for AutoNAT to advertise it
      ...(announce.length > 0 ? { announce } : {})
    },
    transports: [udxOverlay({
      // peers keep their links open with their own probes, which the gateway answers (see link-cadence.ts);
      // probing back would double the packets. A peer silent through three of its idle probes is gone
      inboundKeepAlive: false,
      deadAfterMs: PATH_CADENCE.idle.deadAfterMs,
      maxPendingInboundPerHost: config.admission.maxPendingUdpSetupsPerIp,
      inboundSetupsPerHostPerSecond: config.admission.udpSetupsPerIpPerSecond,
      inboundSetupBurstPerHost: 2 * config.admission.udpSetupsPerIpPerSecond
    }), tcp({ listenOpts: { keepAlive: true, keepAliveInitialDelay: TCP_KEEPALIVE_IDLE_MS } })],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux({ keepAliveInterval: YAMUX_PING_MS, streamOptions: { maxStreamWindowSize: STREAM_WINDOW_BYTES } })],
    connectionGater: {
      denyDialMultiaddr: () => false,
      // the gate is where the relay server names both ends of a circuit: the dashboard learns the pair there
      denyOutboundRelayedConnection: async (source, destination) => {
        const denied = await circuitGate.denyOutboundRelayedConnection(source, destination)
        if (!denied) circuits.opened(source, destination)
        return denied
      },
      ...pendingConnectionsPerIpGate(config.admission.maxPendingConnectionsPerIp)
    },
    connectionManager: {
      maxConnections,
      inboundConnectionThreshold: config.admission.connectionsPerIpPerSecond,
      maxIncomingPendingConnections: config.admission.maxPendingConnections
    },
    // libp2p's connection monitor opens a ping stream on every connection every 10 s: at 1,000 peers that is most
    // of an idle gateway's CPU, for nothing the gateway uses (it never aborted on a failed ping: one that waits
    // behind relayed data is no sign of a dead peer). Dead peers are found by the overlay's liveness (udx) and
    // TCP keepalives; peers measure their gateways' RTT themselves.
    connectionMonitor: { enabled: false },
    // the process defaults are in the registry already. The library also clears its own module-wide metric cache
    // and prom-client's global registry here (preserveExistingMetrics: false): natmesh keeps nothing in the
    // global one, and a fresh cache is what puts this gateway's libp2p metrics into this gateway's registry
    metrics: prometheusMetrics({ registry, collectDefaultMetrics: false }),
    services: {
      identify: identify(),
      // a peer's DHT, its gateway health checks and its RTT pings may overlap on one connection
      ping: ping({ maxInboundStreams: PING_STREAMS, maxOutboundStreams: PING_STREAMS }),
      relay: circuitRelayServer({
        // circuits per peer are limited by the gate above; this per-connection cap leaves room for RESERVE
        maxInboundHopStreams: config.relay.maxCircuitsPerPeer + RESERVE_HEADROOM,
        reservations: {
          maxReservations: config.relay.maxReservations,
          reservationTtl: config.relay.reservationTtlMs,
          defaultDurationLimit: config.relay.circuitDurationMs,
          defaultDataLimit: BigInt(config.relay.circuitDataBytes)
        }
      }),
      // natmesh peers on the UDP overlay get circuits the gateway forwards in udx without decrypting them
      forward: forwardServer({
        reservation: (peer) => node == null ? undefined : reservationStoreOf(node.services.relay).get(peer),
        enabled: config.relay.forwarding,
        workers: { count: config.relay.workers, host: config.host, basePort: config.relay.workerPort },
        onEvent: (event) => {
          if (event.type === 'worker-unreached') options.logger.warn({ source: event.source, target: event.target, port: event.port }, `relay worker: ${event.detail} (is UDP port ${event.port} open in the firewall?); the circuit is forwarded on the main loop instead`)
          else options.logger.error({ port: event.port }, `relay worker on UDP port ${event.port} failed: ${event.error}; its circuits ended, new ones go to the other workers or the main loop`)
        },
        allowlist: config.relay.allowlist,
        maxInboundHopStreams: config.relay.maxCircuitsPerPeer + RESERVE_HEADROOM
      }),
      punchReports: punchReports({
        onReport: (report, connection) => {
          metrics.holePunchReported(report)
          punches.record(connection.remotePeer.toString(), report)
        }
      }),
      iceServers: iceServersProtocol({ serversFor: (peer) => iceServers.serversFor(peer.toString()) }),
      dht: stationDht({ role: 'server', claims: new StationClaims() })
    }
  }) as Libp2p<GatewayServices>
  renewReservationsProperly(node.services.relay, config.relay.reservationTtlMs)
  const relayBuffers = new RelayBuffers()
  spliceCircuitsWithBackpressure(node.services.relay, relayBuffers)
  // after the splice: the allowlist wraps the CONNECT handler the splice put in
  allowUnlimitedCircuits(node.services.relay, config.relay.allowlist)
  listUdxOnlyToOverlayPeers(node.services.relay, node)
  shareReservationsFairly(node.services.relay, (peer, ip) => {
    options.logger.debug({ peer: peer.toString() }, `the relay is full: the reservation of ${peer.toString()} went to a newcomer from ${ip}, which holds fewer`)
    // a peer keeps a reservation in mind until it renews it: closing its connections tells it now, and its
    // client reserves again (refused while its address is the busiest) or turns to another relay
    for (const connection of node?.getConnections(peer) ?? []) {
      connection.close().catch((err: Error) => { connection.abort(err) })
    }
  })
  return new Gateway({ node, config, registry, logger: options.logger, addressBook, metrics, stun, turn, iceServers, listen, circuits, punches, relayBuffers })
}

