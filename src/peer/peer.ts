import { defaultLogger } from '@libp2p/logger'
import { peerIdFromString } from '@libp2p/peer-id'
import { TypedEventEmitter } from 'main-event'
import type { Connection, Libp2p, Logger as Libp2pLogger, PeerId, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { PeerConfig } from '../config/index.js'
import { NatmeshError } from '../core/errors.js'
import { libp2pLogger } from '../core/libp2p-logger.js'
import type { Logger } from '../core/logging.js'
import { pingOver } from '../core/ping-path.js'
import { isRelayed, webRtcAddress } from '../core/relay-address.js'
import { startInOrder } from '../core/start-in-order.js'
import type { IceMode, IceStatus } from '../ice/ice-mode.js'
import { gatewayStunServers } from '../nat/gateway-stun-servers.js'
import type { NatMappingProfile } from '../nat/mapping-profile.js'
import { OwnNat } from '../nat/own-nat.js'
import type { NatReport } from '../nat/types.js'
import { reachableCircuits } from '../relay/client/relay-dial.js'
import { lookupStation } from '../stations/lookup.js'
import type { LookupOptions, StationLookup } from '../stations/lookup.js'
import { StationPublisher } from '../stations/publisher.js'
import { SessionManager } from '../upgrade/session-manager.js'
import type { SessionHandler, SessionTotals } from '../upgrade/session-manager.js'
import { SessionError } from '../upgrade/session.js'
import type { Session, SessionOptions } from '../upgrade/session.js'
import { ConnectionStats } from './connection-stats.js'
import type { HolePunchCount, PeerConnectionStats } from './connection-stats.js'
import type { OverlayTransport, Path, PeerEvent } from './events.js'
import { discoverGateways, groupGatewayAddresses } from './gateway-discovery.js'
import { GatewayPool } from './gateway-pool.js'
import { NetworkChange } from './network-change.js'
import type { GatewayPoolEvent } from './gateway-pool.js'
import { ObservedAddresses } from './observed-addresses.js'
import { createPeerNode } from './peer-node.js'
import type { PeerServices } from './peer-node.js'
import { PeerPaths, pathOf } from './peer-paths.js'
import { LinkCadence } from './link-cadence.js'
import { PunchPolicy } from './punch-policy.js'
import { TargetResolver } from './target-resolver.js'

export { STATION_PREFIX } from './target-resolver.js'

export interface NatmeshPeerEvents {
  event: CustomEvent<PeerEvent>
  stopped: CustomEvent
}

/** reservations are renewed this long before the gateway would drop them */
const REFRESH_BEFORE_EXPIRY_MS = 5 * 60_000

/** What createPeer builds before the libp2p node, because the node's hole puncher asks them */
interface PeerParts {
  node: Libp2p<PeerServices>
  config: PeerConfig
  ownNat: OwnNat
  observed: ObservedAddresses
  sessionOptions: Partial<SessionOptions>
  /** ice mode's parts */
  ice?: IceMode
  /** signs station records, needed only when `config.stations` names any */
  privateKey: PrivateKey
}

/**
 * The peer daemon: reserves a slot on its gateways, learns its public address from them, and upgrades relayed
 * connections to direct ones with DCUtR over the UDP overlay (mode `opportunistic`), keeping the relay as
 * the fallback path. This class composes the parts and is the public API; each part reports through typed
 * events of its own, which become the peer's `event`s here and nowhere else.
 */
export class NatmeshPeer extends TypedEventEmitter<NatmeshPeerEvents> {
  readonly node: Libp2p<PeerServices>
  readonly config: PeerConfig
  private readonly ownNat: OwnNat
  private readonly observed: ObservedAddresses
  private readonly pool: GatewayPool
  private readonly paths: PeerPaths
  private readonly targets: TargetResolver
  private readonly sessions: SessionManager
  private readonly connectionStats = new ConnectionStats()
  private readonly ice?: IceMode
  private readonly publisher?: StationPublisher
  /** started, NAT detection not yet: it waits for the first gateway to answer (see start) */
  private natWaitsForGateway = false
  private readonly networkChange: NetworkChange
  private readonly cadence: LinkCadence

  constructor (parts: PeerParts) {
    super()
    const { node, config, ice, ownNat, observed } = parts
    this.node = node
    this.config = config
    this.ice = ice
    this.ownNat = ownNat
    this.observed = observed
    const publish = (event: PeerEvent): void => { this.safeDispatchEvent('event', { detail: event }) }
    this.sessions = new SessionManager({
      node,
      log: node.logger.forComponent('natmesh:session'),
      options: parts.sessionOptions,
      // only asked when no usable connection is left, so an old (possibly dead) one must not be handed back
      dial: async (peer, signal) => this.connect(peer.toString(), signal, { force: true }),
      bestConnection: (peer, excludeId) => this.bestConnection(peer, excludeId)
    })
    this.pool = new GatewayPool({
      node,
      configured: groupGatewayAddresses(config.gateways),
      maxGateways: config.maxGateways,
      discover: async (signal) => discoverGateways(node, signal),
      discoveryIntervalMs: config.gatewayDiscoveryIntervalMs,
      overlayRttMs: (connection) => node.services.udxPaths.pathOf(connection)?.rttMs,
      link: { dialAddress: node.services.addressDialer.dial, dialTimeoutMs: config.gatewayDialTimeoutMs, udpRetryMs: config.gatewayUdpRetryMs, reconnect: config.reconnect, refreshBeforeExpiryMs: REFRESH_BEFORE_EXPIRY_MS },
      log: node.logger.forComponent('natmesh:gateway-link'),
      emit: (event) => {
        this.gatewaysChanged(event)
        publish(event)
      }
    })
    if (config.stations.length > 0) {
      this.publisher = new StationPublisher({
        names: config.stations,
        dht: node.services.dht,
        peerId: node.peerId,
        privateKey: parts.privateKey,
        mode: config.mode,
        ttlMs: config.stationTtlMs,
        relayAddresses: () => this.relayAddresses(),
        log: node.logger.forComponent('natmesh:stations'),
        emit: publish
      })
    }
    this.networkChange = new NetworkChange({ node, pool: this.pool, observed, ownNat, log: node.logger.forComponent('natmesh:network-change'), emit: publish })
    this.cadence = new LinkCadence({
      pathOf: (connection) => node.services.udxPaths.pathOf(connection),
      gatewayConnections: () => this.pool.links.flatMap(link => node.getConnections(link.gateway))
    })
    this.paths = new PeerPaths({
      node,
      isGateway: (peer) => this.pool.isGateway(peer),
      stats: this.connectionStats,
      emit: (event) => {
        if (event.event !== 'ice-path') this.cadence.peerPaths(this.paths.count)
        publish(event)
      }
    })
    this.targets = new TargetResolver({
      gateways: () => this.pool.links.map(link => ({ gateway: link.gateway, connection: this.gatewayConnection(link.gateway) })),
      lookup: async (name, options) => this.lookup(name, options)
    })
    const punches = new PunchPolicy({
      node,
      stats: this.connectionStats,
      fallbackToRelay: config.natTraversal.fallbackToRelay,
      gatewayConnection: () => this.pool.links.map(link => this.gatewayConnection(link.gateway)).find(conn => conn != null),
      natMapping: async () => this.ownNat.mapping(),
      natType: async () => (await this.ownNat.detect().catch(() => undefined))?.natType,
      emit: publish
    })
    ownNat.addEventListener('event', (evt) => { publish(evt.detail) })
    ownNat.addEventListener('report', (evt) => { ice?.detectedNatType(evt.detail.natType) })
    observed.addEventListener('event', (evt) => { publish(evt.detail) })
    node.addEventListener('peer:identify', (evt) => { if (this.pool.isGateway(evt.detail.peerId)) observed.identifiedByGateway(evt.detail) })
    node.addEventListener('connection:open', (evt) => { this.paths.opened(evt.detail) })
    node.addEventListener('connection:close', (evt) => { this.paths.closed(evt.detail) })
    node.services.holePuncher?.addEventListener('hole-punch', (evt) => { punches.finished(evt.detail) })
    ice?.attach({
      node,
      emit: publish,
      isGateway: (peer) => this.pool.links.some(link => link.gateway.equals(peer)),
      detectNatType: async () => (await this.ownNat.detect())?.natType,
      gatewayAddresses: (gateway) => [
        ...this.pool.links.filter(link => link.gateway.equals(gateway)).flatMap(link => link.addresses),
        ...node.getConnections(gateway).map(conn => conn.remoteAddr)
      ]
    })
    node.logger.forComponent('natmesh:peer')('peer %p created in %s mode', node.peerId, config.mode)
  }

  get peerId (): PeerId {
    return this.node.peerId
  }

  /** Starts every part in order; when one fails, the ones started before it are stopped and the error rethrown. */
  async start (): Promise<void> {
    const { node } = this
    await startInOrder([
      { start: async () => { await node.start() }, stop: async () => { await node.stop() } },
      { start: async () => { await this.ice?.start() }, stop: async () => { await this.ice?.stop() } },
      { start: async () => { await this.sessions.start() }, stop: async () => { await this.sessions.stop() } },
      {
        start: () => {
          this.observed.listening(node.getMultiaddrs())
          this.safeDispatchEvent('event', { detail: { event: 'started', peerId: this.peerId.toString(), mode: this.config.mode, listenAddrs: node.getMultiaddrs().map(String) } })
        },
        stop: () => {}
      },
      { start: () => { this.pool.start() }, stop: () => { this.pool.stop() } },
      { start: () => { this.publisher?.start() }, stop: async () => { await this.publisher?.stop() } },
      // NAT detection's STUN round trips (and its modules) start once the first gateway answered or failed: no
      // hole punch can come before the first reservation, which they would only slow down
      { start: () => { this.natWaitsForGateway = true }, stop: () => { this.stopNat() } },
      { start: () => { this.networkChange.start() }, stop: () => { this.networkChange.stop() } }
    ])
  }

  async stop (): Promise<void> {
    this.networkChange.stop()
    this.cadence.stop()
    this.stopNat()
    // withdraw while the gateways are still reachable
    await this.publisher?.stop()
    this.pool.stop()
    await this.ice?.stop()
    await this.sessions.stop()
    await this.node.stop()
    this.safeDispatchEvent('stopped')
  }

  /**
   * Addresses through which other peers reach this one (one per gateway reservation; in ice mode each also as
   * `…/p2p-circuit/webrtc/p2p/<us>`, which dials by WebRTC signalled through that gateway).
   */
  relayAddresses (): Multiaddr[] {
    const relayed = this.pool.links.flatMap(link => link.relayAddresses)
    return this.ice == null ? relayed : [...relayed, ...relayed.map(webRtcAddress)]
  }

  /** ice mode: NAT type, ICE servers in preference order, strategy history */
  iceStatus (): IceStatus | undefined {
    return this.ice?.status()
  }

  /** Each gateway: which overlay the link to it runs on (none while down) and the relay addresses it holds. */
  gateways (): Array<{ gateway: string, transport: OverlayTransport | 'none', relayAddresses: string[] }> {
    return this.pool.links.map(link => ({ gateway: link.gateway.toString(), transport: link.transport ?? 'none', relayAddresses: link.relayAddresses.map(String) }))
  }

  /**
   * The last NAT type report (undefined until the first detection finished, or when detection is off). A stale
   * report is returned as it is, and a new detection starts in the background.
   */
  natReport (): NatReport | undefined {
    return this.ownNat.report()
  }

  /** The NAT type report, fresh (detected again once older than natDetection.cacheMs); undefined when off */
  async detectNat (options: { force?: boolean } = {}): Promise<NatReport | undefined> {
    return this.ownNat.detect(options)
  }

  /** Public UDP overlay addresses, as observed by the gateways; what a hole punch offers the other side. */
  publicAddresses (): Multiaddr[] {
    return this.observed.publicAddresses()
  }

  /** How our NAT maps ports, as the hole puncher goes by it (see OwnNat.mapping) */
  async natMapping (): Promise<NatMappingProfile> {
    return this.ownNat.mapping()
  }

  /**
   * Connects to a peer given as a multiaddr, a peer id reached through our gateways, or `station:<name>` (looked
   * up in the DHT, reached through the station's gateways). In opportunistic mode the relayed connection is
   * upgraded in the background; see `waitForDirect`.
   */
  async connect (target: string | Multiaddr, signal: AbortSignal = AbortSignal.timeout(15_000), options: { force?: boolean } = {}): Promise<Connection> {
    const addresses = await this.targets.addresses(target, signal)
    const dialable = await reachableCircuits(this.node, addresses, { gatewayDialTimeoutMs: this.config.gatewayDialTimeoutMs, signal })
    return this.node.dial(dialable, { signal, force: options.force })
  }

  /** Where station `name` is: its verified record (see lookupStation), or none. */
  async lookup (name: string, options: LookupOptions = {}): Promise<StationLookup> {
    return lookupStation(this.node.services.dht, name, options)
  }

  /**
   * Opens a session to `target` (peer id, or multiaddr): a message channel that starts on whatever path exists
   * (usually the relay), moves to the direct path when the hole punch succeeds, and survives path loss.
   */
  async openSession (target: string | Multiaddr, protocol: string): Promise<Session> {
    const connection = await this.connect(target)
    const existing = this.bestConnection(connection.remotePeer) ?? connection
    try {
      return await this.sessions.open(existing, protocol)
    } catch (err) {
      // a connection can look open after its path died (its gateway was killed): once more on a fresh one
      if (!(err instanceof SessionError && err.code === 'PROTOCOL')) {
        const fresh = await this.connect(target, AbortSignal.timeout(15_000), { force: true })
        return this.sessions.open(fresh, protocol)
      }
      throw err
    }
  }

  /** Accepts sessions for `protocol`. */
  handleSessions (protocol: string, handler: SessionHandler): void {
    this.sessions.handle(protocol, handler)
  }

  unhandleSessions (protocol: string): void {
    this.sessions.unhandle(protocol)
  }

  /** Every open session's counters: path, migrations, frames resent, bytes via relay and direct. */
  sessionStats (): ReturnType<Session['stats']>[] {
    return this.sessions.list().map(session => session.stats())
  }

  /** The best open connection to `peer`: direct if there is one (relayed first when preferDirect is off). */
  bestConnection (peer: PeerId, excludeId?: string): Connection | undefined {
    const open = this.node.getConnections(peer).filter(conn => conn.status === 'open' && conn.id !== excludeId)
    const preferred = this.config.natTraversal.preferDirect ? open.find(conn => !isRelayed(conn.remoteAddr)) : open.find(conn => isRelayed(conn.remoteAddr))
    return preferred ?? open[0]
  }

  /** Resolves with the direct connection to `peer` as soon as there is one, or undefined after `timeoutMs`. */
  async waitForDirect (peer: PeerId, timeoutMs: number): Promise<Connection | undefined> {
    return this.paths.waitForDirect(peer, timeoutMs)
  }

  /** Pings `peer` over a given connection (default: the best one) and records the RTT. */
  async ping (peer: PeerId, connection = this.bestConnection(peer)): Promise<{ rttMs: number, path: Path }> {
    if (connection == null) throw new NatmeshError('NOT_CONNECTED', `not connected to ${peer.toString()}`)
    const rttMs = await pingOver(connection)
    const path = pathOf(connection)
    this.connectionStats.rtt(peer.toString(), rttMs)
    this.safeDispatchEvent('event', { detail: { event: 'ping', peer: peer.toString(), path, rttMs } })
    return { rttMs, path }
  }

  /** Counts bytes natmesh's own protocols moved to and from `peer`. */
  recordBytes (peer: PeerId, sent: number, received: number): void {
    this.connectionStats.bytes(peer.toString(), sent, received)
  }

  stats (): PeerConnectionStats[] {
    return this.connectionStats.list()
  }

  /** finished hole punches since start, by outcome and strategy */
  holePunchCounts (): HolePunchCount[] {
    return this.connectionStats.holePunchCounts()
  }

  /** open connections to other peers (not gateways), by path */
  openConnections (): Record<Path, number> {
    return this.connectionStats.openByPath()
  }

  /** every session's counters added up since start, ended sessions included */
  sessionTotals (): SessionTotals {
    return this.sessions.totals()
  }

  private gatewayConnection (gateway: PeerId): Connection | undefined {
    return this.node.getConnections(gateway).find(conn => conn.status === 'open')
  }

  private stopNat (): void {
    this.natWaitsForGateway = false
    this.ownNat.stop()
  }

  /** the parts that depend on which gateways hold our reservations */
  private gatewaysChanged (event: GatewayPoolEvent): void {
    if (event.event === 'gateway-connected') {
      for (const connection of this.node.getConnections(peerIdFromString(event.gateway))) this.cadence.linked(connection)
    }
    if (this.natWaitsForGateway && (event.event === 'reservation' || event.event === 'reservation-refused' || event.event === 'gateway-lost')) {
      this.natWaitsForGateway = false
      this.ownNat.start()
    }
    if (event.event === 'reservation') this.ice?.gatewayReached(peerIdFromString(event.gateway))
    // where we can be reached changed: the station records must say so
    if (event.event === 'reservation' || event.event === 'gateway-lost' || event.event === 'reservation-refused') this.publisher?.changed()
  }
}

export interface CreatePeerOptions {
  privateKey: PrivateKey
  /** session layer tuning: buffer bounds, grace period after path loss */
  sessions?: Partial<SessionOptions>
  /** natmesh's and libp2p's components log here; default: libp2p's own logger (`DEBUG=libp2p:*,natmesh:*`) */
  logger?: Logger
}

async function createIceMode (config: PeerConfig, log: Libp2pLogger): Promise<IceMode> {
  const [{ IceMode }, { fetchIceServers }] = await Promise.all([import('../ice/ice-mode.js'), import('../ice-servers/client.js')])
  return new IceMode({ config, log, fetchIceServers })
}

/**
 * The composition root: the parts the libp2p node's hole puncher asks (our observed addresses, our NAT) first,
 * then the node, then the peer that wires the rest.
 */
export async function createPeer (config: PeerConfig, options: CreatePeerOptions): Promise<NatmeshPeer> {
  const logger = options.logger != null ? libp2pLogger(options.logger) : defaultLogger()
  // @libp2p/webrtc and its native ICE agent take most of a second of CPU to load: only ice mode pays for them
  const ice = config.mode === 'ice' ? await createIceMode(config, logger.forComponent('natmesh:ice')) : undefined
  const { natMapping, natMappingDelta, allowPrivateAddresses } = config.natTraversal
  const observed = new ObservedAddresses({ allowPrivateAddresses })
  const detection = config.natDetection
  const ownNat = new OwnNat({
    configured: natMappingDelta != null ? { kind: natMapping, delta: natMappingDelta } : { kind: natMapping },
    ...(detection.enabled
      ? { detection: { servers: () => gatewayStunServers(config.gateways, detection.stunPorts), cacheMs: detection.cacheMs, timeoutMs: detection.timeoutMs } }
      : {}),
    observations: () => observed.observations()
  })
  const node = await createPeerNode(config, {
    privateKey: options.privateKey,
    logger,
    ice,
    punch: { publicAddresses: async (signal) => observed.current(signal), natMapping: async () => ownNat.mapping() }
  })
  return new NatmeshPeer({ node, config, ownNat, observed, ice, privateKey: options.privateKey, sessionOptions: options.sessions ?? {} })
}
