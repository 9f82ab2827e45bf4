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
import type { Connection, IdentifyResult, Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { defaultLogger } from '@libp2p/logger'
import type { PeerConfig } from '../config/index.js'
import { sendPunchReport } from '../gateway/punch-reports.js'
import { isUdxMultiaddr, udxOverlay } from '../transport/index.js'
import { ConnectionStats } from './connection-stats.js'
import type { PeerConnectionStats } from './connection-stats.js'
import type { OverlayTransport, Path, PeerEvent } from './events.js'
import { GatewayLink } from './gateway-link.js'
import { holePuncher } from './hole-punch/hole-puncher.js'
import type { HolePuncher, HolePunchOutcome } from './hole-punch/hole-puncher.js'
import { pingOver } from './ping-path.js'
import { SessionManager } from '../upgrade/session-manager.js'
import type { SessionHandler } from '../upgrade/session-manager.js'
import type { Session, SessionOptions } from '../upgrade/session.js'
import { isRelayed, relayAddress, splitRelayAddress, webRtcAddress } from './relay-address.js'
import { IceMode } from './ice/ice-mode.js'
import { fetchIceServers } from './ice-servers.js'
import type { IceStatus } from './ice/ice-mode.js'
import { isWebRtc, selectedPair } from './ice/selected-pair.js'
import { MAX_TIMEOUT_MS } from './ice/strategy-history.js'
import { natTypeEvent } from '../nat/describe.js'
import { gatewayStunServers } from '../nat/gateway-stun-servers.js'
import { NatDetector } from '../nat/nat-detector.js'
import type { NatReport } from '../nat/types.js'

export interface NatmeshPeerEvents {
  event: CustomEvent<PeerEvent>
  stopped: CustomEvent
}

type PeerServices = { holePuncher?: HolePuncher, identify: unknown, ping: unknown }

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
  private readonly links: GatewayLink[]
  private readonly connectionStats = new ConnectionStats()
  private readonly sessions: SessionManager
  /** our public UDP overlay address per gateway, as that gateway observed it */
  private readonly observed = new Map<string, Multiaddr>()
  private readonly ice?: IceMode
  /** absent when natDetection.enabled is false */
  private readonly natDetector?: NatDetector

  constructor (node: Libp2p<PeerServices>, config: PeerConfig, sessionOptions: Partial<SessionOptions> = {}, ice?: IceMode) {
    super()
    this.node = node
    this.config = config
    this.ice = ice
    this.sessions = new SessionManager({
      node,
      log: node.logger.forComponent('natmesh:session'),
      options: sessionOptions,
      // only asked when no usable connection is left, so an old (possibly dead) one must not be handed back
      dial: async (peer, signal) => this.connect(peer.toString(), signal, { force: true }),
      bestConnection: (peer, excludeId) => this.bestConnection(peer, excludeId)
    })
    const log = node.logger.forComponent('natmesh:peer')
    this.links = groupGatewayAddresses(config.gateways).map(({ gateway, addresses }) => new GatewayLink({
      gateway,
      addresses,
      dialTimeoutMs: config.gatewayDialTimeoutMs,
      reconnect: config.reconnect,
      refreshBeforeExpiryMs: REFRESH_BEFORE_EXPIRY_MS,
      node,
      log: node.logger.forComponent('natmesh:gateway-link'),
      emit: (event) => { this.emit(event) }
    }))
    if (config.natDetection.enabled) {
      this.natDetector = new NatDetector({
        servers: () => gatewayStunServers(config.gateways, config.natDetection.stunPorts),
        cacheMs: config.natDetection.cacheMs,
        timeoutMs: config.natDetection.timeoutMs,
        onReport: (report) => {
          ice?.detectedNatType(report.natType)
          this.emit(natTypeEvent(report))
        },
        onError: (err) => { this.emit({ event: 'error', message: `NAT type detection failed: ${err.message}` }) }
      })
    }
    node.addEventListener('peer:identify', (evt) => { this.onIdentify(evt.detail) })
    node.addEventListener('connection:open', (evt) => { this.onConnection(evt.detail, 'open') })
    node.addEventListener('connection:close', (evt) => { this.onConnection(evt.detail, 'close') })
    node.services.holePuncher?.addEventListener('hole-punch', (evt) => { this.onHolePunch(evt.detail) })
    ice?.attach({
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
    for (const link of this.links) link.start()
    this.natDetector?.start()
  }

  async stop (): Promise<void> {
    this.natDetector?.stop()
    for (const link of this.links) link.stop()
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
   * Connects to a peer given as a multiaddr, or as a peer id reached through our gateways. In opportunistic
   * mode the relayed connection is upgraded in the background; see `waitForDirect`.
   */
  async connect (target: string | Multiaddr, signal: AbortSignal = AbortSignal.timeout(15_000), options: { force?: boolean } = {}): Promise<Connection> {
    const addresses = this.targetAddresses(target)
    // libp2p's relay transport dials `/p2p/<gw>/p2p-circuit/…` over an existing gateway connection, so make
    // sure there is one to each gateway named in a full relayed address
    const relayed = addresses.map(ma => splitRelayAddress(ma))
    for (const split of relayed) {
      if (split != null) await this.node.dial(split.gateway, { signal })
    }
    return this.node.dial(addresses.map((ma, i) => relayed[i]?.circuit ?? ma), { signal, force: options.force })
  }

  /**
   * Opens a session to `target` (peer id, or multiaddr): a message channel that starts on whatever path exists
   * (usually the relay), moves to the direct path when the hole punch succeeds, and survives path loss.
   */
  async openSession (target: string | Multiaddr, protocol: string): Promise<Session> {
    const connection = await this.connect(target)
    return this.sessions.open(this.bestConnection(connection.remotePeer) ?? connection, protocol)
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

  private targetAddresses (target: string | Multiaddr): Multiaddr[] {
    if (typeof target !== 'string') return [target]
    if (target.startsWith('/')) return [multiaddr(target)]
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
    if (viaGateways.length === 0) throw new Error(`cannot reach ${target}: not connected to any gateway yet`)
    return viaGateways
  }

  private onIdentify (result: IdentifyResult): void {
    const link = this.links.find(l => l.gateway.equals(result.peerId))
    const observed = result.observedAddr
    if (link == null || observed == null || isRelayed(result.connection.remoteAddr)) return
    if (!isUdxMultiaddr(observed)) return
    if (isPrivate(observed) && !this.config.natTraversal.allowPrivateAddresses) return
    const gateway = link.gateway.toString()
    const previous = this.observed.get(gateway)
    this.observed.set(gateway, observed)
    if (previous?.equals(observed) !== true) this.emit({ event: 'observed-address', gateway, address: observed.toString() })
  }

  private onConnection (connection: Connection, change: 'open' | 'close'): void {
    const peer = connection.remotePeer
    if (this.links.some(link => link.gateway.equals(peer))) return
    const path = pathOf(connection)
    const remoteAddr = connection.remoteAddr.toString()
    if (change === 'open') {
      this.connectionStats.opened(peer.toString(), connection.id, path, remoteAddr)
      this.emit({ event: 'connection', peer: peer.toString(), path, remoteAddr, direction: connection.direction })
      if (isWebRtc(connection.remoteAddr)) void this.onIcePath(connection)
    } else {
      this.connectionStats.closed(peer.toString(), connection.id)
      this.emit({ event: 'connection-closed', peer: peer.toString(), path, remoteAddr })
    }
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
    this.connectionStats.holePunch(peer, outcome.attempts, msSinceRelay)
    this.emit({
      event: 'hole-punch',
      peer,
      outcome: outcome.outcome,
      attempts: outcome.attempts,
      ...(msSinceRelay != null ? { msSinceRelay } : {}),
      ...(outcome.reason != null ? { reason: outcome.reason } : {}),
      ...(outcome.direct != null ? { remoteAddr: outcome.direct.remoteAddr.toString() } : {})
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
      sendPunchReport(gateway, { outcome: outcome.outcome, attempts: outcome.attempts, msSinceRelay }).catch(() => {
        // metrics only: a gateway that can't take the report must not disturb the peer
      })
    }
  }

  private emit (event: PeerEvent): void {
    if (event.event === 'reservation') this.ice?.gatewayReached(peerIdFromString(event.gateway))
    this.safeDispatchEvent('event', { detail: event })
  }
}

function pathOf (connection: Connection): Path {
  return isRelayed(connection.remoteAddr) ? 'relay' : 'direct'
}

/** A gateway may be given by several addresses (UDP overlay and TCP); one link per gateway peer id. */
function groupGatewayAddresses (gateways: string[]): Array<{ gateway: PeerId, addresses: Multiaddr[] }> {
  const byPeer = new Map<string, { gateway: PeerId, addresses: Multiaddr[] }>()
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

export interface CreatePeerOptions {
  privateKey: PrivateKey
  /** session layer tuning: buffer bounds, grace period after path loss */
  sessions?: Partial<SessionOptions>
}

export async function createPeer (config: PeerConfig, options: CreatePeerOptions): Promise<NatmeshPeer> {
  let peer: NatmeshPeer | undefined
  const holePunching = config.mode === 'opportunistic' && config.natTraversal.enabled
  const logger = defaultLogger()
  const ice = config.mode === 'ice' ? new IceMode({ config, log: logger.forComponent('natmesh:ice'), fetchIceServers }) : undefined
  const node = await createLibp2p({
    privateKey: options.privateKey,
    start: false,
    logger,
    addresses: {
      listen: [`/ip4/${config.host}/udp/${config.udpPort}/udx`, `/ip4/${config.host}/tcp/${config.tcpPort}`]
    },
    transports: [
      udxOverlay({ dialTimeoutMs: config.natTraversal.holePunchTimeoutMs }),
      tcp(),
      circuitRelayTransport(),
      ...(ice != null ? [ice.transport()] : [])
    ],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
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
      ping: ping(),
      ...(holePunching
        ? {
            holePuncher: holePuncher({
              timeoutMs: config.natTraversal.holePunchTimeoutMs,
              retries: config.natTraversal.holePunchRetries,
              allowPrivateAddresses: config.natTraversal.allowPrivateAddresses,
              publicAddresses: () => peer?.publicAddresses() ?? []
            })
          }
        : {})
    }
  }) as Libp2p<PeerServices>
  peer = new NatmeshPeer(node, config, options.sessions, ice)
  return peer
}
