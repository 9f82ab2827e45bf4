import { networkInterfaces } from 'node:os'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { isPrivate } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { TypedEventEmitter } from 'main-event'
import type { KadDHT } from '@libp2p/kad-dht'
import type { Connection, IdentifyResult, Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { defaultLogger } from '@libp2p/logger'
import { libp2pLogger } from '../core/libp2p-logger.js'
import type { Logger } from '../core/logging.js'
import type { PeerConfig } from '../config/index.js'
import { sendPunchReport } from '../punch-report/punch-reports.js'
import { isUdxMultiaddr, toUdpEndpoint, udxOverlay } from '../transport/index.js'
import { addressDialer } from '../transport/address-dialer.js'
import type { AddressDialer } from '../transport/address-dialer.js'
import { ConnectionStats } from './connection-stats.js'
import type { HolePunchCount, PeerConnectionStats } from './connection-stats.js'
import type { OverlayTransport, Path, PeerEvent } from './events.js'
import type { GatewayLink } from './gateway-link.js'
import { GatewayPool } from './gateway-pool.js'
import type { GatewayAddresses } from './gateway-pool.js'
import { holePuncher } from '../dcutr/hole-puncher.js'
import type { HolePuncher, HolePunchOutcome } from '../dcutr/hole-puncher.js'
import type { NatMappingProfile } from '../nat/mapping-profile.js'
import { mappingFromObservations } from '../nat/nat-mapping.js'
import { mappingFromReport, probeMapping } from '../nat/mapping-probe.js'
import { pingOver, PING_STREAMS } from '../core/ping-path.js'
import { SessionManager } from '../upgrade/session-manager.js'
import type { SessionHandler, SessionTotals } from '../upgrade/session-manager.js'
import { SessionError } from '../upgrade/session.js'
import type { Session, SessionOptions } from '../upgrade/session.js'
import { isRelayed, relayAddress, webRtcAddress } from '../core/relay-address.js'
import type { IceMode } from '../ice/ice-mode.js'
import { fetchIceServers } from '../ice-servers/client.js'
import type { IceStatus } from '../ice/ice-mode.js'
import { isWebRtc, selectedPair } from '../ice/selected-pair.js'
import { MAX_TIMEOUT_MS } from '../ice/strategy-history.js'
import { natTypeEvent } from '../nat/describe.js'
import { gatewayStunServers } from '../nat/gateway-stun-servers.js'
import { NatDetector } from '../nat/nat-detector.js'
import type { NatReport } from '../nat/types.js'
import { reachableCircuits } from '../relay/client/relay-dial.js'
import { abortStreamsOnReset } from './stream-muxer.js'
import { CompactMemoryDatastore } from '../stations/compact-datastore.js'
import { NATMESH_DHT_PROTOCOL, stationDht } from '../stations/dht.js'
import { lookupStation } from '../stations/lookup.js'
import type { LookupOptions, StationLookup } from '../stations/lookup.js'
import { StationPublisher } from '../stations/publisher.js'


/**
 * A gateway or peer that vanishes without closing (power loss, SIGKILL, a cut path) is noticed when its udx
 * stream stays silent this long, and the connection is aborted: relayed sessions through that gateway resume
 * through another one, a lost direct path falls back to the relay. The keepalive makes a live remote answer
 * every 750 ms (one packet each way, answered in C), so a silence of 2.5 s is 3 lost probes or answers in a row.
 */
const PATH_KEEPALIVE_MS = 750
const PATH_DEAD_AFTER_MS = 2500
export interface NatmeshPeerEvents {
  event: CustomEvent<PeerEvent>
  stopped: CustomEvent
}

type PeerServices = { holePuncher?: HolePuncher, identify: unknown, ping: unknown, dht: KadDHT, addressDialer: AddressDialer }

/** `station:<name>` targets are looked up in the gateways' DHT */
export const STATION_PREFIX = 'station:'

/** how long a direct connection's identify is waited for before it is taken for a peer path */
const IDENTIFY_WAIT_MS = 5000

/** reservations are renewed this long before the gateway would drop them */
const REFRESH_BEFORE_EXPIRY_MS = 5 * 60_000

/**
 * The peer daemon: reserves a slot on its gateways, learns its public address from them, and upgrades relayed
 * connections to direct ones with DCUtR over the UDP overlay (mode `opportunistic`), keeping the relay as
 * the fallback path.
 */
export class NatmeshPeer extends TypedEventEmitter<NatmeshPeerEvents> {
  readonly node: Libp2p<PeerServices>
  readonly config: PeerConfig
  private readonly pool: GatewayPool
  private readonly publisher?: StationPublisher
  /** peers we reached by station name: a resumed session looks them up again, their gateways may have changed */
  private readonly stationOf = new Map<string, string>()
  /** gateways other than ours (a station's, ones the DHT queried): their connections are no peer paths */
  private readonly otherGateways = new Set<string>()
  /** the connections reported as peer paths (`connection` events), so that only those get `connection-closed` */
  private readonly peerPaths = new Set<string>()
  private readonly connectionStats = new ConnectionStats()
  private readonly sessions: SessionManager
  /** our public UDP overlay address per gateway, as that gateway observed it */
  private readonly observed = new Map<string, Multiaddr>()
  private readonly ice?: IceMode
  /** absent when natDetection.enabled is false */
  private readonly natDetector?: NatDetector
  /** the quick mapping-only test run at start-up, for hole punches before the full NAT report is in */
  private mappingProbe?: Promise<NatMappingProfile>

  /** `ice`: ice mode's parts; `privateKey` signs station records, needed only when `config.stations` names any */
  constructor (node: Libp2p<PeerServices>, config: PeerConfig, sessionOptions: Partial<SessionOptions> = {}, extras: { ice?: IceMode, privateKey?: PrivateKey } = {}) {
    super()
    this.node = node
    this.config = config
    this.ice = extras.ice
    this.sessions = new SessionManager({
      node,
      log: node.logger.forComponent('natmesh:session'),
      options: sessionOptions,
      // only asked when no usable connection is left, so an old (possibly dead) one must not be handed back
      dial: async (peer, signal) => this.connect(peer.toString(), signal, { force: true }),
      bestConnection: (peer, excludeId) => this.bestConnection(peer, excludeId)
    })
    const log = node.logger.forComponent('natmesh:peer')
    this.pool = new GatewayPool({
      node,
      configured: groupGatewayAddresses(config.gateways),
      maxGateways: config.maxGateways,
      discover: async (signal) => discoverGateways(node, signal),
      discoveryIntervalMs: config.gatewayDiscoveryIntervalMs,
      link: { dialAddress: node.services.addressDialer.dial, dialTimeoutMs: config.gatewayDialTimeoutMs, udpRetryMs: config.gatewayUdpRetryMs, reconnect: config.reconnect, refreshBeforeExpiryMs: REFRESH_BEFORE_EXPIRY_MS },
      log: node.logger.forComponent('natmesh:gateway-link'),
      emit: (event) => { this.emit(event) }
    })
    if (config.natDetection.enabled) {
      this.natDetector = new NatDetector({
        servers: () => gatewayStunServers(config.gateways, config.natDetection.stunPorts),
        cacheMs: config.natDetection.cacheMs,
        timeoutMs: config.natDetection.timeoutMs,
        onReport: (report) => {
          extras.ice?.detectedNatType(report.natType)
          this.emit(natTypeEvent(report))
        },
        onError: (err) => { this.emit({ event: 'error', message: `NAT type detection failed: ${err.message}` }) }
      })
    }
    if (config.stations.length > 0) {
      if (extras.privateKey == null) throw new Error('stations need the peer\'s private key to sign their records')
      this.publisher = new StationPublisher({
        names: config.stations,
        dht: node.services.dht,
        peerId: node.peerId,
        privateKey: extras.privateKey,
        mode: config.mode,
        ttlMs: config.stationTtlMs,
        relayAddresses: () => this.relayAddresses(),
        log: node.logger.forComponent('natmesh:stations'),
        emit: (event) => { this.emit(event) }
      })
    }
    node.addEventListener('peer:identify', (evt) => { this.onIdentify(evt.detail) })
    node.addEventListener('connection:open', (evt) => { this.onConnection(evt.detail, 'open') })
    node.addEventListener('connection:close', (evt) => { this.onConnection(evt.detail, 'close') })
    node.services.holePuncher?.addEventListener('hole-punch', (evt) => { this.onHolePunch(evt.detail) })
    extras.ice?.attach({
      node,
      emit: (event) => { this.emit(event) },
      isGateway: (peer) => this.links.some(link => link.gateway.equals(peer)),
      detectNatType: async () => (await this.natDetector?.detect())?.natType,
      gatewayAddresses: (gateway) => [
        ...this.links.filter(link => link.gateway.equals(gateway)).flatMap(link => link.addresses),
        ...node.getConnections(gateway).map(conn => conn.remoteAddr)
      ]
    })
    log('peer %p created in %s mode', node.peerId, config.mode)
  }

  get peerId (): PeerId {
    return this.node.peerId
  }

  async start (): Promise<void> {
    await this.node.start()
    await this.ice?.start()
    await this.sessions.start()
    this.emit({ event: 'started', peerId: this.peerId.toString(), mode: this.config.mode, listenAddrs: this.node.getMultiaddrs().map(String) })
    this.pool.start()
    this.publisher?.start()
    this.natDetector?.start()
    if (this.config.natDetection.enabled && this.config.natTraversal.natMapping === 'auto') {
      const servers = gatewayStunServers(this.config.gateways, this.config.natDetection.stunPorts)
      this.mappingProbe = probeMapping(servers, this.config.natDetection.timeoutMs).catch(() => ({ kind: 'unknown' }))
    }
  }

  async stop (): Promise<void> {
    this.natDetector?.stop()
    // withdraw while the gateways are still reachable
    await this.publisher?.stop()
    this.pool.stop()
    await this.ice?.stop()
    await this.sessions.stop()
    await this.node.stop()
    this.safeDispatchEvent('stopped')
  }

  /** the gateways holding (or being asked for) our reservations */
  private get links (): GatewayLink[] {
    return this.pool.links
  }

  /**
   * Addresses through which other peers reach this one (one per gateway reservation; in ice mode each also as
   * `…/p2p-circuit/webrtc/p2p/<us>`, which dials by WebRTC signalled through that gateway).
   */
  relayAddresses (): Multiaddr[] {
    const relayed = this.links.flatMap(link => link.relayAddresses)
    return this.ice == null ? relayed : [...relayed, ...relayed.map(webRtcAddress)]
  }

  /** ice mode: NAT type, ICE servers in preference order, strategy history */
  iceStatus (): IceStatus | undefined {
    return this.ice?.status()
  }

  /** Each gateway: which overlay the link to it runs on (none while down) and the relay addresses it holds. */
  gateways (): Array<{ gateway: string, transport: OverlayTransport | 'none', relayAddresses: string[] }> {
    return this.links.map(link => ({ gateway: link.gateway.toString(), transport: link.transport ?? 'none', relayAddresses: link.relayAddresses.map(String) }))
  }

  /**
   * The last NAT type report (undefined until the first detection finished, or when detection is off). A stale
   * report is returned as it is, and a new detection starts in the background.
   */
  natReport (): NatReport | undefined {
    void this.natDetector?.detect()
    return this.natDetector?.current()
  }

  /** The NAT type report, fresh (detected again once older than natDetection.cacheMs); undefined when off */
  async detectNat (options: { force?: boolean } = {}): Promise<NatReport | undefined> {
    return this.natDetector?.detect(options)
  }

  /** Public UDP overlay addresses, as observed by the gateways; what a hole punch offers the other side. */
  publicAddresses (): Multiaddr[] {
    return [...new Map([...this.observed.values()].map(ma => [ma.toString(), ma])).values()]
  }

  /**
   * How our NAT maps ports, which decides whether a hole punch is plain DCUtR, a birthday punch (one side
   * symmetric) or skipped (both symmetric): as configured; else the full NAT report; else the quick mapping test
   * run at start-up (waited for); else what the gateways' observations tell.
   */
  async natMapping (): Promise<NatMappingProfile> {
    const { natMapping, natMappingDelta } = this.config.natTraversal
    if (natMapping !== 'auto') return natMappingDelta != null ? { kind: natMapping, delta: natMappingDelta } : { kind: natMapping }
    const report = this.natReport()
    if (report != null) return mappingFromReport(report)
    const probed = await this.mappingProbe
    if (probed != null && probed.kind !== 'unknown') return probed
    const listening = this.node.getMultiaddrs().map(ma => toUdpEndpoint(ma)).find(endpoint => endpoint != null)
    if (listening == null) return { kind: 'unknown' }
    const hosts = Object.values(networkInterfaces()).flatMap(addrs => addrs ?? []).map(addr => addr.address)
    const observed = [...this.observed.values()].map(ma => toUdpEndpoint(ma)).filter(endpoint => endpoint != null)
    return mappingFromObservations({ port: listening.port, hosts }, observed)
  }

  /**
   * Connects to a peer given as a multiaddr, a peer id reached through our gateways, or `station:<name>` (looked
   * up in the DHT, reached through the station's gateways). In opportunistic mode the relayed connection is
   * upgraded in the background; see `waitForDirect`.
   */
  async connect (target: string | Multiaddr, signal: AbortSignal = AbortSignal.timeout(15_000), options: { force?: boolean } = {}): Promise<Connection> {
    const addresses = await this.targetAddresses(target, signal)
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

  /** Resolves with the direct connection to `peer` once there is one, or undefined after `timeoutMs`. */
  async waitForDirect (peer: PeerId, timeoutMs: number): Promise<Connection | undefined> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      const direct = this.node.getConnections(peer).find(conn => conn.status === 'open' && !isRelayed(conn.remoteAddr))
      if (direct != null) return direct
      if (Date.now() >= deadline) return undefined
      await new Promise(resolve => setTimeout(resolve, 20))
    }
  }

  /** Pings `peer` over a given connection (default: the best one) and records the RTT. */
  async ping (peer: PeerId, connection = this.bestConnection(peer)): Promise<{ rttMs: number, path: Path }> {
    if (connection == null) throw new Error(`not connected to ${peer.toString()}`)
    const rttMs = await pingOver(connection)
    const path = pathOf(connection)
    this.connectionStats.rtt(peer.toString(), rttMs)
    this.emit({ event: 'ping', peer: peer.toString(), path, rttMs })
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

  private async targetAddresses (target: string | Multiaddr, signal: AbortSignal): Promise<Multiaddr[]> {
    if (typeof target !== 'string') return [target]
    if (target.startsWith('/')) return [multiaddr(target)]
    if (target.startsWith(STATION_PREFIX)) return this.stationAddresses(target.slice(STATION_PREFIX.length), signal)
    let peer: PeerId
    try {
      peer = peerIdFromString(target)
    } catch {
      throw new Error(`"${target}" is neither a multiaddr nor a peer id`)
    }
    const viaGateways = this.links.flatMap(link => {
      const connection = this.node.getConnections(link.gateway).find(conn => conn.status === 'open')
      return connection == null ? [] : [relayAddress(connection.remoteAddr, link.gateway, peer)]
    })
    const station = this.stationOf.get(target)
    const viaStation = station == null ? [] : await this.stationAddresses(station, signal).catch(() => [])
    if (viaGateways.length + viaStation.length === 0) throw new Error(`cannot reach ${target}: not connected to any gateway yet`)
    return [...viaStation, ...viaGateways]
  }

  private async stationAddresses (name: string, signal: AbortSignal): Promise<Multiaddr[]> {
    const { record } = await this.lookup(name, { signal })
    if (record == null) throw new Error(`station ${name} not found`)
    if (record.withdrawn) throw new Error(`station ${name} was withdrawn by its owner`)
    if (record.relayAddrs.length === 0) throw new Error(`station ${name} has no gateway at the moment`)
    this.stationOf.set(record.peerId, name)
    return record.relayAddrs.map(address => multiaddr(address))
  }

  private onIdentify (result: IdentifyResult): void {
    // any gateway's: a link's first connection is often the one the pool opened to probe, identified before the link existed
    const observed = result.observedAddr
    if (!this.pool.isGateway(result.peerId) || observed == null || isRelayed(result.connection.remoteAddr)) return
    if (!isUdxMultiaddr(observed)) return
    if (isPrivate(observed) && !this.config.natTraversal.allowPrivateAddresses) return
    const gateway = result.peerId.toString()
    const previous = this.observed.get(gateway)
    this.observed.set(gateway, observed)
    if (previous?.equals(observed) !== true) this.emit({ event: 'observed-address', gateway, address: observed.toString() })
  }

  private onConnection (connection: Connection, change: 'open' | 'close'): void {
    const peer = connection.remotePeer
    if (this.pool.isGateway(peer) || this.otherGateways.has(peer.toString())) return
    if (change === 'close') {
      if (!this.peerPaths.delete(connection.id)) return
      this.connectionStats.closed(peer.toString(), connection.id)
      this.emit({ event: 'connection-closed', peer: peer.toString(), path: pathOf(connection), remoteAddr: connection.remoteAddr.toString() })
      return
    }
    const upgrade = isRelayed(connection.remoteAddr) || this.node.getConnections(peer).some(conn => conn.id !== connection.id && isRelayed(conn.remoteAddr))
    if (upgrade) {
      this.onPeerPath(connection)
      return
    }
    // a direct connection no relayed one came before may be a gateway's (a DHT query, a station's gateway):
    // gateways are the DHT's servers, so identify tells
    void this.speaksDht(connection).then((gateway) => {
      if (gateway) this.otherGateways.add(peer.toString())
      else if (connection.status === 'open') this.onPeerPath(connection)
    })
  }

  private onPeerPath (connection: Connection): void {
    const peer = connection.remotePeer
    const path = pathOf(connection)
    const remoteAddr = connection.remoteAddr.toString()
    this.peerPaths.add(connection.id)
    this.connectionStats.opened(peer.toString(), connection.id, path, remoteAddr)
    this.emit({ event: 'connection', peer: peer.toString(), path, remoteAddr, direction: connection.direction })
    if (isWebRtc(connection.remoteAddr)) void this.onIcePath(connection)
  }

  /** Whether the remote serves natmesh's DHT, by identify on this connection (false when identify does not come) */
  private async speaksDht (connection: Connection): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (result: boolean): void => {
        clearTimeout(timer)
        this.node.removeEventListener('peer:identify', onIdentify)
        this.node.removeEventListener('connection:close', onClose)
        resolve(result)
      }
      const onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
        if (evt.detail.connection.id === connection.id) done(evt.detail.protocols.includes(NATMESH_DHT_PROTOCOL))
      }
      const onClose = (evt: CustomEvent<Connection>): void => { if (evt.detail.id === connection.id) done(false) }
      const timer = setTimeout(() => { done(false) }, IDENTIFY_WAIT_MS)
      this.node.addEventListener('peer:identify', onIdentify)
      this.node.addEventListener('connection:close', onClose)
    })
  }

  private async onIcePath (connection: Connection): Promise<void> {
    const pair = await selectedPair(connection).catch(() => undefined)
    if (pair == null) return
    const peer = connection.remotePeer.toString()
    this.connectionStats.candidatePair(peer, connection.id, pair.type)
    const where = (c: typeof pair.local): string => `${c.type} ${c.address ?? '?'}:${c.port ?? '?'}`
    this.emit({ event: 'ice-path', peer, candidateType: pair.type, local: where(pair.local), remote: where(pair.remote) })
  }

  private onHolePunch (outcome: HolePunchOutcome): void {
    const peer = outcome.peer.toString()
    const msSinceRelay = outcome.msSinceRelay == null ? undefined : Math.max(0, outcome.msSinceRelay)
    this.connectionStats.holePunch(peer, outcome.attempts, msSinceRelay, { outcome: outcome.outcome, strategy: outcome.strategy, code: outcome.code, reason: outcome.reason, cost: outcome.cost })
    this.emit({
      event: 'hole-punch',
      peer,
      outcome: outcome.outcome,
      attempts: outcome.attempts,
      ...(msSinceRelay != null ? { msSinceRelay } : {}),
      ...(outcome.reason != null ? { reason: outcome.reason } : {}),
      ...(outcome.code != null ? { code: outcome.code } : {}),
      ...(outcome.direct != null ? { remoteAddr: outcome.direct.remoteAddr.toString() } : {}),
      ...(outcome.strategy != null ? { strategy: outcome.strategy } : {}),
      ...(outcome.cost != null ? { cost: outcome.cost } : {})
    })
    if (outcome.outcome === 'failure' && !this.config.natTraversal.fallbackToRelay) {
      // direct-only policy: a relayed connection that could not be upgraded is not kept
      for (const conn of this.node.getConnections(outcome.peer)) {
        if (isRelayed(conn.remoteAddr)) void conn.close().catch(() => {})
      }
      this.emit({ event: 'error', message: `no direct path to ${peer} and fallbackToRelay is off: relayed connection closed` })
    }
    const gateway = this.links.map(link => this.node.getConnections(link.gateway).find(conn => conn.status === 'open')).find(conn => conn != null)
    if (gateway != null) {
      this.natMapping().then(async (mapping) => sendPunchReport(gateway, {
        outcome: outcome.outcome,
        attempts: outcome.attempts,
        msSinceRelay,
        strategy: outcome.strategy,
        sockets: outcome.cost?.sockets,
        probes: outcome.cost == null ? undefined : outcome.cost.probes + outcome.cost.sprays,
        durationMs: outcome.cost?.ms,
        mapping: mapping.kind,
        natType: this.natDetector?.current()?.natType,
        remotePeer: peer
      })).catch(() => {
        // metrics only: a gateway that can't take the report must not disturb the peer
      })
    }
  }

  private emit (event: PeerEvent): void {
    if (event.event === 'reservation') this.ice?.gatewayReached(peerIdFromString(event.gateway))
    // where we can be reached changed: the station records must say so
    if (event.event === 'reservation' || event.event === 'gateway-lost' || event.event === 'reservation-refused') this.publisher?.changed()
    this.safeDispatchEvent('event', { detail: event })
  }
}

function pathOf (connection: Connection): Path {
  return isRelayed(connection.remoteAddr) ? 'relay' : 'direct'
}

/** A gateway may be given by several addresses (UDP overlay and TCP); one link per gateway peer id. */
function groupGatewayAddresses (gateways: string[]): GatewayAddresses[] {
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
async function discoverGateways (node: Libp2p<PeerServices>, signal: AbortSignal): Promise<GatewayAddresses[]> {
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

export interface CreatePeerOptions {
  privateKey: PrivateKey
  /** session layer tuning: buffer bounds, grace period after path loss */
  sessions?: Partial<SessionOptions>
  /** natmesh's and libp2p's components log here; default: libp2p's own logger (`DEBUG=libp2p:*,natmesh:*`) */
  logger?: Logger
}

export async function createPeer (config: PeerConfig, options: CreatePeerOptions): Promise<NatmeshPeer> {
  let peer: NatmeshPeer | undefined
  const holePunching = config.mode === 'opportunistic' && config.natTraversal.enabled
  const logger = options.logger != null ? libp2pLogger(options.logger) : defaultLogger()
  // @libp2p/webrtc and its native ICE agent take most of a second of CPU to load: only ice mode pays for them
  const ice = config.mode === 'ice'
    ? new (await import('../ice/ice-mode.js')).IceMode({ config, log: logger.forComponent('natmesh:ice'), fetchIceServers })
    : undefined
  const node = await createLibp2p({
    privateKey: options.privateKey,
    start: false,
    logger,
    // the DHT keeps a copy of every station record this peer publishes
    datastore: new CompactMemoryDatastore(),
    addresses: {
      listen: [`/ip4/${config.host}/udp/${config.udpPort}/udx`, `/ip4/${config.host}/tcp/${config.tcpPort}`]
    },
    transports: [
      udxOverlay({ dialTimeoutMs: config.natTraversal.holePunchTimeoutMs, keepAliveMs: PATH_KEEPALIVE_MS, deadAfterMs: PATH_DEAD_AFTER_MS }),
      tcp(),
      circuitRelayTransport(),
      ...(ice != null ? [ice.transport()] : [])
    ],
    connectionEncrypters: [noise()],
    streamMuxers: [abortStreamsOnReset(yamux())],
    // gateways and lab peers may sit on private addresses; what to dial is decided by config, not by range
    connectionGater: { denyDialMultiaddr: () => false },
    // libp2p's monitor aborts a connection on one failed ping; measured here, that took down healthy relayed
    // connections now and then. It still measures RTT; dead paths are found by the transports' keepalives and
    // by the sessions' own heartbeats, which then resume on another path
    connectionMonitor: { abortConnectionOnPingFailure: false },
    // an ICE attempt may take up to the strategy's longest adaptive timeout, on both sides of it
    ...(ice != null ? { connectionManager: { addressDialTimeout: MAX_TIMEOUT_MS, dialTimeout: MAX_TIMEOUT_MS, inboundUpgradeTimeout: MAX_TIMEOUT_MS } } : {}),
    services: {
      identify: identify(),
      // one ping stream per connection (libp2p's default) is too few once the DHT vets a new gateway while the
      // gateway pool checks its health: the DHT's ping failed and the gateway never entered its routing table
      ping: ping({ maxOutboundStreams: PING_STREAMS }),
      dht: stationDht({ role: 'client' }),
      addressDialer: addressDialer(),
      ...(holePunching
        ? {
            holePuncher: holePuncher({
              timeoutMs: config.natTraversal.holePunchTimeoutMs,
              retries: config.natTraversal.holePunchRetries,
              allowPrivateAddresses: config.natTraversal.allowPrivateAddresses,
              publicAddresses: () => peer?.publicAddresses() ?? [],
              natMapping: async () => await peer?.natMapping() ?? { kind: 'unknown' },
              birthday: config.natTraversal.birthday
            })
          }
        : {})
    }
  }) as Libp2p<PeerServices>
  peer = new NatmeshPeer(node, config, options.sessions, { ice, privateKey: options.privateKey })
  return peer
}
