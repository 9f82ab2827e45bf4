import { serviceDependencies } from '@libp2p/interface'
import { pbStream } from '@libp2p/utils'
import { TypedEventEmitter } from 'main-event'
import type { ComponentLogger, Connection, Libp2pEvents, Logger, PeerId, Startable, Stream, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager, Registrar, TransportManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isUdxTransport, toUdxMultiaddr } from '../transport/index.js'
import type { UdpEndpoint, UdxTransport } from '../transport/index.js'
import type { OverlaySocket } from '../transport/overlay-socket.js'
import { PROBE_TOKEN_LENGTH } from '../transport/control-message.js'
import { HolePunch } from './pb/hole-punch.js'
import { AttemptBudget } from './attempt-budget.js'
import { BIRTHDAY_DEFAULTS, probe, spray } from './birthday.js'
import type { BirthdayCost, BirthdaySettings } from './birthday.js'
import { punchableAddresses } from './dialable-addresses.js'
import { dialableLanCandidates, ownLanCandidates, sharesPublicIp } from './lan-candidates.js'
import { fromWireMapping, toWireMapping } from './wire-mapping.js'
import { portCandidates, predictedPorts } from './port-candidates.js'
import { choosePunchStrategy } from './strategy.js'
import type { NatMappingProfile } from '../nat/mapping-profile.js'
import type { PunchStrategy, Side } from './strategy.js'
import { dialNow } from '../transport/address-dialer.js'
import { isRelayed } from '../core/relay-address.js'

/** The DCUtR protocol id: our wire messages are the spec's, so go/rust libp2p peers can talk to us. */
export const DCUTR_PROTOCOL = '/libp2p/dcutr'
const MAX_MESSAGE_SIZE = 4096

export interface HolePuncherInit {
  /** how long one attempt may take, from CONNECT to a direct connection; default 5000 ms */
  timeoutMs?: number
  /** attempts per relayed connection; default 3 */
  retries?: number
  /** how often the Sync sender sends punch datagrams; default 25 ms */
  punchIntervalMs?: number
  /** punch to private addresses too (peers on one LAN, loopback); default false */
  allowPrivateAddresses?: boolean
  /** this node's public UDP overlay addresses, as observed by its gateways (trusted, no AutoNAT round) */
  publicAddresses: () => Multiaddr[]
  /** how this node's NAT maps ports, as far as it knows; decides plain DCUtR, birthday punch or none */
  natMapping?: () => Promise<NatMappingProfile>
  /** whether and within which bounds to birthday punch (see BirthdaySettings) */
  birthday?: Partial<BirthdaySettings> & { enabled?: boolean }
}

export interface HolePunchComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
  transportManager: TransportManager
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

export interface HolePunchOutcome {
  peer: PeerId
  outcome: 'success' | 'failure' | 'skipped'
  attempts: number
  /** how the last attempt went about it */
  strategy?: PunchStrategy['kind']
  /** what the attempts cost: extra sockets, probes and sprayed datagrams (birthday), and time in ms */
  cost?: PunchCost
  /** from the relayed connection opening to the direct connection opening */
  msSinceRelay?: number
  reason?: string
  /** machine-readable cause of a skip or failure (see HolePunchCode) */
  code?: HolePunchCode
  direct?: Connection
}

/**
 * NO_UDP_PATH: one side has no UDP path (no UDP overlay address observed by a gateway: UDP blocked, or reached
 * over TCP only), so no punch is tried. CUT_SHORT: the attempt ended before the punch could finish because the
 * relayed connection closed or this peer stopped; the reason says which, and after how long. NO_DCUTR: the
 * remote does not speak DCUtR (a libp2p peer without it).
 */
export type HolePunchCode = 'NO_UDP_PATH' | 'CUT_SHORT' | 'NO_DCUTR'

export interface HolePuncherEvents {
  'hole-punch': CustomEvent<HolePunchOutcome>
}

export interface PunchCost extends BirthdayCost {
  ms: number
}

const defaults = { timeoutMs: 5000, retries: 3, punchIntervalMs: 25, allowPrivateAddresses: false, natMapping: async (): Promise<NatMappingProfile> => ({ kind: 'unknown' }) }

/** The exchange decided against any punch: not a failure, and not worth a retry. */
class PunchSkipped extends Error {
  constructor (message: string, readonly code?: HolePunchCode) {
    super(message)
  }
}

/** Why an attempt was cut short (an abort reason): the relayed connection closed, or this peer is stopping. */
class PunchCutShort extends Error {}

const NO_UDP_PATH_LOCAL = 'this peer has no UDP path (no UDP overlay address observed by a gateway: UDP blocked or not up yet)'
const NO_UDP_PATH_REMOTE = 'the remote peer has no UDP path (it offered no UDP overlay address: UDP blocked or reached over TCP only)'

/**
 * DCUtR over the UDP overlay. Roles follow the spec's UDP variant: B (the side that received the relayed
 * connection) sends CONNECT, measures the relay RTT, sends SYNC, then punches from its one socket and accepts;
 * A dials as soon as SYNC arrives, and its retransmitted HELLOs are the other half of the punch. B dials as well,
 * which is what gets through when only A is reachable (A public, B behind a symmetric NAT); whichever direct
 * connection opens first is the result. The relayed connection is left open as the fallback path.
 */
export class HolePuncher extends TypedEventEmitter<HolePuncherEvents> implements Startable {
  readonly [serviceDependencies] = ['@libp2p/identify']
  readonly [Symbol.toStringTag] = '@natmesh/hole-puncher'

  private readonly components: HolePunchComponents
  private readonly init: Required<Omit<HolePuncherInit, 'birthday'>>
  private readonly birthday: BirthdaySettings & { enabled: boolean }
  private readonly birthdayBudget: AttemptBudget
  private readonly log: Logger
  private readonly inProgress = new Set<string>()
  /** relayed connections a punch was started for: by connection:open, and again by identify's topology */
  private readonly punched = new WeakSet<Connection>()
  private topologyId?: string
  private shutdown = new AbortController()

  constructor (components: HolePunchComponents, init: HolePuncherInit) {
    super()
    this.components = components
    this.init = { ...defaults, ...init }
    this.birthday = { ...BIRTHDAY_DEFAULTS, enabled: true, ...init.birthday }
    this.birthdayBudget = new AttemptBudget(this.birthday.attemptsPerPeerPerMinute)
    this.log = components.logger.forComponent('natmesh:hole-puncher')
  }

  async start (): Promise<void> {
    this.shutdown = new AbortController()
    await this.components.registrar.handle(DCUTR_PROTOCOL, async (stream, connection) => {
      await this.respond(stream, connection)
    }, { runOnLimitedConnection: true, maxInboundStreams: 2 })
    // a relayed connection is punched the moment it opens: waiting for identify to say the remote speaks DCUtR
    // costs a round trip or two, and a short transfer could end before the punch started. The topology stays for
    // connections that opened before this service started.
    this.components.events.addEventListener('connection:open', this.onConnectionOpen)
    this.topologyId = await this.components.registrar.register(DCUTR_PROTOCOL, {
      notifyOnLimitedConnection: true,
      onConnect: (_peerId, connection) => { this.punchRelayed(connection) }
    })
  }

  private readonly onConnectionOpen = (evt: CustomEvent<Connection>): void => {
    this.punchRelayed(evt.detail)
  }

  /** B's side starts one punch per relayed connection it received. */
  private punchRelayed (connection: Connection): void {
    if (!isRelayed(connection.remoteAddr) || connection.direction !== 'inbound' || this.punched.has(connection)) return
    this.punched.add(connection)
    void this.initiate(connection)
  }

  async stop (): Promise<void> {
    this.components.events.removeEventListener('connection:open', this.onConnectionOpen)
    this.shutdown.abort(new PunchCutShort('this peer is stopping'))
    await this.components.registrar.unhandle(DCUTR_PROTOCOL)
    if (this.topologyId != null) this.components.registrar.unregister(this.topologyId)
  }

  /** B's side: drive the exchange over the relayed connection, then punch and wait for A's dial. */
  async initiate (relayed: Connection): Promise<HolePunchOutcome> {
    const peer = relayed.remotePeer
    const key = peer.toString()
    if (this.inProgress.has(key)) return this.report({ peer, outcome: 'skipped', attempts: 0, reason: 'a hole punch to this peer is already running' })
    this.inProgress.add(key)
    try {
      if (this.directConnection(peer) != null) return this.report({ peer, outcome: 'skipped', attempts: 0, reason: 'already connected directly' })
      const ownAddresses = this.init.publicAddresses()
      if (ownAddresses.length === 0) return this.report({ peer, outcome: 'skipped', attempts: 0, reason: NO_UDP_PATH_LOCAL, code: 'NO_UDP_PATH' })
      let lastError = 'no attempt made'
      const cost: PunchCost = { sockets: 0, probes: 0, sprays: 0, ms: 0 }
      let strategy: PunchStrategy['kind'] | undefined
      const started = Date.now()
      const outcome = (result: Omit<HolePunchOutcome, 'peer' | 'strategy' | 'cost'>): HolePunchOutcome => {
        cost.ms = Date.now() - started
        return this.report({ peer, strategy, cost, ...result })
      }
      for (let attempt = 1; attempt <= this.init.retries; attempt++) {
        if (relayed.status !== 'open') return outcome({ outcome: 'failure', attempts: attempt - 1, reason: 'relayed connection closed' })
        try {
          const direct = await this.attemptAsB(relayed, ownAddresses, cost, chosen => { strategy = chosen })
          return outcome({ outcome: 'success', attempts: attempt, msSinceRelay: openedAt(direct) - openedAt(relayed), direct })
        } catch (err) {
          lastError = err instanceof Error ? err.message : String(err)
          if (err instanceof PunchSkipped) return outcome({ outcome: 'skipped', attempts: attempt, reason: lastError, ...(err.code != null ? { code: err.code } : {}) })
          if (err instanceof PunchCutShort) return outcome({ outcome: 'failure', attempts: attempt, reason: lastError, code: 'CUT_SHORT' })
          this.log('attempt %d/%d to %p failed - %s', attempt, this.init.retries, peer, lastError)
        }
      }
      return outcome({ outcome: 'failure', attempts: this.init.retries, reason: lastError })
    } finally {
      this.inProgress.delete(key)
    }
  }

  private async attemptAsB (relayed: Connection, ownAddresses: Multiaddr[], cost: BirthdayCost, onStrategy: (kind: PunchStrategy['kind']) => void): Promise<Connection> {
    const peer = relayed.remotePeer
    const started = Date.now()
    const { signal, cut, release } = this.attemptSignal(relayed)
    const lanStop = new AbortController()
    let stream: Stream | undefined
    let sockets: OverlaySocket[] = []
    try {
      // a remote without DCUtR refuses the protocol, which ends up as NO_DCUTR below
      stream = await relayed.newStream(DCUTR_PROTOCOL, { signal, runOnLimitedConnection: true })
      const messages = pbStream(stream, { maxDataLength: MAX_MESSAGE_SIZE }).pb(HolePunch)
      const ownMapping = await this.init.natMapping()
      // the token offers a birthday punch; the responder echoes it to accept
      const token = this.birthdayAvailable(peer) ? crypto.getRandomValues(new Uint8Array(PROBE_TOKEN_LENGTH)) : undefined
      const sentAt = Date.now()
      await messages.write({ type: HolePunch.Type.CONNECT, observedAddresses: ownAddresses.map(ma => ma.bytes), mapping: toWireMapping(ownMapping), probeToken: token, localAddresses: [] }, { signal })
      const connect = await messages.read({ signal })
      if (connect.type !== HolePunch.Type.CONNECT) throw new Error(`expected CONNECT, got ${connect.type ?? 'no type'}`)
      const rtt = Date.now() - sentAt
      const agreed = token != null && connect.probeToken != null && equalBytes(connect.probeToken, token)
      // the responder offers LAN candidates only when it sees us behind its own public IP; then both sides try
      // each other's LAN addresses, which works whatever the shared NAT does (no hairpinning needed)
      const sameSite = connect.localAddresses.length > 0 && sharesPublicIp(ownAddresses, connect.observedAddresses)
      const strategy: PunchStrategy = sameSite ? { kind: 'dcutr' } : choosePunchStrategy(ownMapping, fromWireMapping(connect.mapping), agreed)
      onStrategy(strategy.kind)
      if (strategy.kind === 'skip') {
        await stream.close({ signal }).catch(() => {})
        throw new PunchSkipped(strategy.reason)
      }
      const targets = punchableAddresses(connect.observedAddresses, this.init.allowPrivateAddresses)
      if (targets.length === 0) {
        await stream.close({ signal }).catch(() => {})
        throw new PunchSkipped(NO_UDP_PATH_REMOTE, 'NO_UDP_PATH')
      }
      sockets = this.openSprayerSockets(strategy, 'initiator', cost)
      const ownLan = sameSite ? ownLanCandidates(this.components.transportManager.getAddrs()) : []
      await messages.write({ type: HolePunch.Type.SYNC, observedAddresses: [], localAddresses: ownLan.map(ma => ma.bytes) }, { signal })
      // a LAN needs no punch: dialled at once, next to the public punch half a round trip later
      const lanDials = this.dialLan(peer, sameSite ? dialableLanCandidates(connect.localAddresses) : [], AbortSignal.any([signal, lanStop.signal]))
      await delay(rtt / 2, signal)
      const direct = await this.punch(strategy, 'initiator', peer, targets, token, sockets, { exchange: signal, cut }, cost, lanDials)
      await stream.close({ signal }).catch(() => {})
      return direct
    } catch (err) {
      this.closeSockets(sockets)
      if (!(err instanceof PunchSkipped)) stream?.abort(err instanceof Error ? err : new Error(String(err)))
      if (err instanceof Error && err.name === 'UnsupportedProtocolError') throw new PunchSkipped('the remote peer does not speak DCUtR', 'NO_DCUTR')
      // whatever the error looked like (a reset stream, a failed dial), the real cause was the cut
      throw cutShort(signal, started) ?? err
    } finally {
      lanStop.abort()
      release()
    }
  }

  /** A's side: answer CONNECT with our addresses, and start our half of the punch the moment SYNC arrives. */
  private async respond (stream: Stream, relayed: Connection): Promise<void> {
    const peer = relayed.remotePeer
    const { signal, cut, release } = this.attemptSignal(relayed)
    const lanStop = new AbortController()
    const started = Date.now()
    const cost: PunchCost = { sockets: 0, probes: 0, sprays: 0, ms: 0 }
    let strategy: PunchStrategy | undefined
    let sockets: OverlaySocket[] = []
    const report = (result: Omit<HolePunchOutcome, 'peer' | 'attempts' | 'strategy' | 'cost'>): void => {
      cost.ms = Date.now() - started
      this.report({ peer, attempts: 1, strategy: strategy?.kind, cost, ...result })
    }
    // learnt while CONNECT is on its way: the initiator times our answer as the relay's round trip
    const mapping = this.init.natMapping().catch((): NatMappingProfile => ({ kind: 'unknown' }))
    try {
      const messages = pbStream(stream, { maxDataLength: MAX_MESSAGE_SIZE }).pb(HolePunch)
      const connect = await messages.read({ signal })
      if (connect.type !== HolePunch.Type.CONNECT) throw new Error(`expected CONNECT, got ${connect.type ?? 'no type'}`)
      const targets = punchableAddresses(connect.observedAddresses, this.init.allowPrivateAddresses)
      const ownMapping = await mapping
      const token = connect.probeToken?.byteLength === PROBE_TOKEN_LENGTH && this.birthdayAvailable(peer) ? connect.probeToken : undefined
      const ownAddresses = this.init.publicAddresses()
      // our LAN addresses go only to a peer behind our own public IP (see lan-candidates.ts)
      const ownLan = sharesPublicIp(ownAddresses, connect.observedAddresses) ? ownLanCandidates(this.components.transportManager.getAddrs()) : []
      const sameSite = ownLan.length > 0
      strategy = sameSite ? { kind: 'dcutr' } : choosePunchStrategy(fromWireMapping(connect.mapping), ownMapping, token != null)
      await messages.write({ type: HolePunch.Type.CONNECT, observedAddresses: ownAddresses.map(ma => ma.bytes), mapping: toWireMapping(ownMapping), probeToken: token, localAddresses: ownLan.map(ma => ma.bytes) }, { signal })
      // without a UDP path on either side there is nothing to punch: the initiator sees the same and stops too
      const noUdpPath = ownAddresses.length === 0 ? NO_UDP_PATH_LOCAL : targets.length === 0 ? NO_UDP_PATH_REMOTE : undefined
      if (noUdpPath != null) {
        await stream.close({ signal }).catch(() => {})
        report({ outcome: 'skipped', reason: noUdpPath, code: 'NO_UDP_PATH' })
        return
      }
      if (strategy.kind === 'skip') {
        await stream.close({ signal }).catch(() => {})
        report({ outcome: 'skipped', reason: strategy.reason })
        return
      }
      // opened while SYNC is on its way
      sockets = this.openSprayerSockets(strategy, 'responder', cost)
      const sync = await messages.read({ signal })
      if (sync.type !== HolePunch.Type.SYNC) throw new Error(`expected SYNC, got ${sync.type ?? 'no type'}`)
      const lanDials = this.dialLan(peer, sameSite ? dialableLanCandidates(sync.localAddresses) : [], AbortSignal.any([signal, lanStop.signal]))
      const direct = await this.punch(strategy, 'responder', peer, targets, token, sockets, { exchange: signal, cut }, cost, lanDials)
      await stream.close({ signal }).catch(() => {})
      report({ outcome: 'success', msSinceRelay: openedAt(direct) - openedAt(relayed), direct })
    } catch (err) {
      this.closeSockets(sockets)
      const cut = cutShort(signal, started)
      const reason = cut?.message ?? (err instanceof Error ? err.message : String(err))
      this.log('responding to hole punch from %p failed - %s', peer, reason)
      stream.abort(err instanceof Error ? err : new Error(reason))
      report({ outcome: 'failure', reason, ...(cut != null ? { code: 'CUT_SHORT' as const } : {}) })
    } finally {
      lanStop.abort()
      release()
    }
  }

  /**
   * One attempt's signal: its time limit, this peer stopping, or the relayed connection closing (the exchange
   * runs over it, and without it the attempt has no purpose), whichever comes first. `release` drops the listener.
   */
  private attemptSignal (relayed: Connection): { signal: AbortSignal, cut: AbortSignal, release: () => void } {
    const closed = new AbortController()
    const onClose = (evt: CustomEvent<Connection>): void => {
      if (evt.detail.id === relayed.id) closed.abort(new PunchCutShort('the relayed connection closed'))
    }
    this.components.events.addEventListener('connection:close', onClose)
    if (relayed.status !== 'open') closed.abort(new PunchCutShort('the relayed connection closed'))
    const cut = AbortSignal.any([this.shutdown.signal, closed.signal])
    return {
      signal: AbortSignal.any([AbortSignal.timeout(this.init.timeoutMs), cut]),
      cut,
      release: () => { this.components.events.removeEventListener('connection:close', onClose) }
    }
  }

  /**
   * Our half of the punch, once both sides know the strategy. Plain DCUtR: the initiator sends punch datagrams,
   * and both sides dial; whichever direct connection opens first is the result. Birthday: the sprayer's extra
   * sockets and the prober's probes look for each other, and the sprayer dials from the socket that got through.
   */
  private async punch (strategy: Exclude<PunchStrategy, { kind: 'skip' }>, me: Side, peer: PeerId, targets: Array<{ ma: Multiaddr, endpoint: UdpEndpoint }>, token: Uint8Array | undefined, sockets: OverlaySocket[], signals: { exchange: AbortSignal, cut: AbortSignal }, cost: BirthdayCost, lanDials: Array<Promise<Connection>> = []): Promise<Connection> {
    const birthday = strategy.kind === 'birthday' && token != null ? strategy : undefined
    // a birthday punch has its own time budget, counted from here
    const signal = birthday == null
      ? signals.exchange
      : AbortSignal.any([AbortSignal.timeout(this.birthday.timeBudgetMs), signals.cut])
    const stop = new AbortController()
    const punchSignal = AbortSignal.any([signal, stop.signal])
    const direct = this.waitForDirect(peer, signal, birthday == null ? this.init.timeoutMs : this.birthday.timeBudgetMs)
    const attempts: Array<Promise<unknown>> = [direct, ...lanDials]
    try {
      if (birthday == null) {
        if (me === 'initiator') {
          const transport = this.udxTransport()
          for (const target of targets) void transport.punch(target.endpoint, punchSignal, this.init.punchIntervalMs)
        }
        attempts.push(this.dial(targets.map(t => t.ma), punchSignal))
      } else {
        if (!this.birthdayBudget.take(peer.toString())) throw new Error('birthday punch budget for this peer used up')
        const [first] = targets
        if (first == null) throw new Error('the remote offered no public UDP overlay address')
        if (birthday.sprayer === me) {
          attempts.push(this.sprayAndDial(peer, sockets, first.endpoint, token as Uint8Array, punchSignal, cost))
        } else {
          const predicted = birthday.predictedDelta != null ? predictedPorts(first.endpoint.port, birthday.predictedDelta, this.birthday.sockets * 2) : []
          const ports = portCandidates(predicted)
          // the hit only stops our probing; the connection is the sprayer's dial, which waitForDirect sees
          probe(this.udxTransport().socket, first.endpoint.host, first.endpoint.family, ports, token as Uint8Array, this.birthday, punchSignal, cost)
            .catch(() => {})
        }
      }
      const connection = await Promise.any(attempts)
        .catch((err: AggregateError) => { throw err.errors[0] instanceof Error ? err.errors[0] : new Error('no direct connection') }) as Connection
      if (isRelayed(connection.remoteAddr)) throw new Error('dial returned a relayed connection')
      return connection
    } finally {
      stop.abort()
      direct.catch(() => {})
    }
  }

  /** The sprayer's side of a birthday punch: find the socket that got through, then dial from it. */
  private async sprayAndDial (peer: PeerId, sockets: OverlaySocket[], target: UdpEndpoint, token: Uint8Array, signal: AbortSignal, cost: BirthdayCost): Promise<Connection> {
    const transport = this.udxTransport()
    const hit = await spray(transport, sockets, target, token, this.birthday, signal, cost)
    const release = transport.routeVia(hit.remote, hit.socket)
    try {
      return await this.dial([toUdxMultiaddr(hit.remote.host, hit.remote.port).encapsulate(`/p2p/${peer.toString()}`)], signal)
    } finally {
      release()
      // the socket lives as long as the connection it carries, and no longer if the dial failed
      hit.socket.closeWhenIdle()
    }
  }

  /** The sprayer's extra sockets, opened before SYNC so the spray starts on time; none for any other role. */
  private openSprayerSockets (strategy: PunchStrategy, me: Side, cost: BirthdayCost): OverlaySocket[] {
    if (strategy.kind !== 'birthday' || strategy.sprayer !== me) return []
    const sockets = this.udxTransport().openExtraSockets(this.birthday.sockets)
    cost.sockets += sockets.length
    return sockets
  }

  /** After a failed attempt: closes the extra sockets (a no-op for those the spray already closed). */
  private closeSockets (sockets: OverlaySocket[]): void {
    if (sockets.length === 0) return
    const transport = this.udxTransport()
    for (const socket of sockets) void transport.closeExtraSocket(socket)
  }

  private async dial (addresses: Multiaddr[], signal: AbortSignal): Promise<Connection> {
    return await this.components.connectionManager.openConnection(addresses, { signal, force: true, priority: 100 })
  }

  /**
   * Dials the peer's LAN candidates, each on its own and beside the public punch (see dialNow): libp2p's dial
   * queue would try them one after another, behind a public address that never answers on a NAT without hairpinning.
   */
  private dialLan (peer: PeerId, candidates: Multiaddr[], signal: AbortSignal): Array<Promise<Connection>> {
    return candidates.map(candidate => {
      const dialing = dialNow(this.components.transportManager, candidate.encapsulate(`/p2p/${peer.toString()}`), { signal })
      // handled here too: an attempt may end before it gets to wait for these
      dialing.catch(() => {})
      return dialing
    })
  }

  private birthdayAvailable (peer: PeerId): boolean {
    return this.birthday.enabled && this.birthdayBudget.available(peer.toString())
  }

  private waitForDirect (peer: PeerId, signal: AbortSignal, limitMs: number): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const onOpen = (evt: CustomEvent<Connection>): void => {
        const connection = evt.detail
        if (!connection.remotePeer.equals(peer) || isRelayed(connection.remoteAddr)) return
        cleanup()
        resolve(connection)
      }
      const onAbort = (): void => {
        cleanup()
        reject(signal.reason instanceof PunchCutShort ? signal.reason : new Error(`no direct connection within ${limitMs} ms`))
      }
      const cleanup = (): void => {
        this.components.events.removeEventListener('connection:open', onOpen)
        signal.removeEventListener('abort', onAbort)
      }
      this.components.events.addEventListener('connection:open', onOpen)
      signal.addEventListener('abort', onAbort, { once: true })
      const existing = this.directConnection(peer)
      if (existing != null) { cleanup(); resolve(existing) }
    })
  }

  private directConnection (peer: PeerId): Connection | undefined {
    return this.components.connectionManager.getConnections(peer)
      .find(conn => conn.status === 'open' && !isRelayed(conn.remoteAddr))
  }

  private udxTransport (): UdxTransport {
    const transport = this.components.transportManager.getTransports().find(isUdxTransport)
    if (transport == null) throw new Error('hole punching needs the UDP overlay transport')
    return transport
  }

  private report (outcome: HolePunchOutcome): HolePunchOutcome {
    this.log('hole punch to %p: %s after %d attempt(s)%s', outcome.peer, outcome.outcome, outcome.attempts, outcome.reason != null ? ` (${outcome.reason})` : '')
    this.safeDispatchEvent('hole-punch', { detail: outcome })
    return outcome
  }
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i])
}

/** The attempt's signal fired because it was cut short: that, with how long the attempt really ran. */
function cutShort (signal: AbortSignal, started: number): PunchCutShort | undefined {
  if (!signal.aborted || !(signal.reason instanceof PunchCutShort)) return undefined
  return new PunchCutShort(`cut short after ${Date.now() - started} ms: ${signal.reason.message} before the punch finished`)
}

function openedAt (connection: Connection): number {
  return connection.timeline.open
}

async function delay (ms: number, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, ms)
    signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
  })
}

export function holePuncher (init: HolePuncherInit): (components: HolePunchComponents) => HolePuncher {
  return (components) => new HolePuncher(components, init)
}
