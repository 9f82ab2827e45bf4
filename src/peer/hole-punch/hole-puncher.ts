import { serviceDependencies } from '@libp2p/interface'
import { pbStream } from '@libp2p/utils'
import { TypedEventEmitter } from 'main-event'
import type { ComponentLogger, Connection, Libp2pEvents, Logger, PeerId, Startable, Stream, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager, Registrar, TransportManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isUdxTransport, toUdxMultiaddr } from '../../transport/index.js'
import type { UdpEndpoint, UdxTransport } from '../../transport/index.js'
import type { OverlaySocket } from '../../transport/overlay-socket.js'
import { PROBE_TOKEN_LENGTH } from '../../transport/control-message.js'
import { HolePunch } from '../pb/hole-punch.js'
import { AttemptBudget } from './attempt-budget.js'
import { BIRTHDAY_DEFAULTS, probe, spray } from './birthday.js'
import type { BirthdayCost, BirthdaySettings } from './birthday.js'
import { punchableAddresses } from './dialable-addresses.js'
import { fromWireMapping, toWireMapping } from './wire-mapping.js'
import { portCandidates, predictedPorts } from './port-candidates.js'
import { choosePunchStrategy } from './strategy.js'
import type { NatMappingProfile, PunchStrategy, Side } from './strategy.js'
import { isRelayed } from '../relay-address.js'

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
  direct?: Connection
}

export interface HolePuncherEvents {
  'hole-punch': CustomEvent<HolePunchOutcome>
}

export interface PunchCost extends BirthdayCost {
  ms: number
}

const defaults = { timeoutMs: 5000, retries: 3, punchIntervalMs: 25, allowPrivateAddresses: false, natMapping: async (): Promise<NatMappingProfile> => ({ kind: 'unknown' }) }

/** The exchange decided against any punch: not a failure, and not worth a retry. */
class PunchSkipped extends Error {}

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
    this.topologyId = await this.components.registrar.register(DCUTR_PROTOCOL, {
      notifyOnLimitedConnection: true,
      onConnect: (_peerId, connection) => {
        if (!isRelayed(connection.remoteAddr) || connection.direction !== 'inbound') return
        void this.initiate(connection)
      }
    })
  }

  async stop (): Promise<void> {
    this.shutdown.abort()
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
      if (ownAddresses.length === 0) return this.report({ peer, outcome: 'skipped', attempts: 0, reason: 'no public UDP address observed by a gateway yet' })
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
          if (err instanceof PunchSkipped) return outcome({ outcome: 'skipped', attempts: attempt, reason: lastError })
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
    const signal = AbortSignal.any([AbortSignal.timeout(this.init.timeoutMs), this.shutdown.signal])
    // the protocol name goes out with CONNECT, saving the negotiation's round trip (identify said it is supported)
    const stream = await relayed.newStream(DCUTR_PROTOCOL, { signal, runOnLimitedConnection: true, negotiateFully: false })
    let sockets: OverlaySocket[] = []
    try {
      const messages = pbStream(stream, { maxDataLength: MAX_MESSAGE_SIZE }).pb(HolePunch)
      const ownMapping = await this.init.natMapping()
      // the token offers a birthday punch; the responder echoes it to accept
      const token = this.birthdayAvailable(peer) ? crypto.getRandomValues(new Uint8Array(PROBE_TOKEN_LENGTH)) : undefined
      const sentAt = Date.now()
      await messages.write({ type: HolePunch.Type.CONNECT, observedAddresses: ownAddresses.map(ma => ma.bytes), mapping: toWireMapping(ownMapping), probeToken: token }, { signal })
      const connect = await messages.read({ signal })
      if (connect.type !== HolePunch.Type.CONNECT) throw new Error(`expected CONNECT, got ${connect.type ?? 'no type'}`)
      const rtt = Date.now() - sentAt
      const agreed = token != null && connect.probeToken != null && equalBytes(connect.probeToken, token)
      const strategy = choosePunchStrategy(ownMapping, fromWireMapping(connect.mapping), agreed)
      onStrategy(strategy.kind)
      if (strategy.kind === 'skip') {
        await stream.close({ signal }).catch(() => {})
        throw new PunchSkipped(strategy.reason)
      }
      const targets = punchableAddresses(connect.observedAddresses, this.init.allowPrivateAddresses)
      if (targets.length === 0) throw new Error('the remote offered no public UDP overlay address')
      sockets = this.openSprayerSockets(strategy, 'initiator', cost)
      await messages.write({ type: HolePunch.Type.SYNC, observedAddresses: [] }, { signal })
      await delay(rtt / 2, signal)
      const direct = await this.punch(strategy, 'initiator', peer, targets, token, sockets, signal, cost)
      await stream.close({ signal }).catch(() => {})
      return direct
    } catch (err) {
      this.closeSockets(sockets)
      if (!(err instanceof PunchSkipped)) stream.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }

  /** A's side: answer CONNECT with our addresses, and start our half of the punch the moment SYNC arrives. */
  private async respond (stream: Stream, relayed: Connection): Promise<void> {
    const peer = relayed.remotePeer
    const signal = AbortSignal.any([AbortSignal.timeout(this.init.timeoutMs), this.shutdown.signal])
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
      strategy = choosePunchStrategy(fromWireMapping(connect.mapping), ownMapping, token != null)
      await messages.write({ type: HolePunch.Type.CONNECT, observedAddresses: this.init.publicAddresses().map(ma => ma.bytes), mapping: toWireMapping(ownMapping), probeToken: token }, { signal })
      if (strategy.kind === 'skip') {
        await stream.close({ signal }).catch(() => {})
        report({ outcome: 'skipped', reason: strategy.reason })
        return
      }
      // opened while SYNC is on its way
      sockets = targets.length > 0 ? this.openSprayerSockets(strategy, 'responder', cost) : []
      const sync = await messages.read({ signal })
      if (sync.type !== HolePunch.Type.SYNC) throw new Error(`expected SYNC, got ${sync.type ?? 'no type'}`)
      if (targets.length === 0) throw new Error('the remote offered no public UDP overlay address')
      const direct = await this.punch(strategy, 'responder', peer, targets, token, sockets, signal, cost)
      await stream.close({ signal }).catch(() => {})
      report({ outcome: 'success', msSinceRelay: openedAt(direct) - openedAt(relayed), direct })
    } catch (err) {
      this.closeSockets(sockets)
      const reason = err instanceof Error ? err.message : String(err)
      this.log('responding to hole punch from %p failed - %s', peer, reason)
      stream.abort(err instanceof Error ? err : new Error(reason))
      report({ outcome: 'failure', reason })
    }
  }

  /**
   * Our half of the punch, once both sides know the strategy. Plain DCUtR: the initiator sends punch datagrams,
   * and both sides dial; whichever direct connection opens first is the result. Birthday: the sprayer's extra
   * sockets and the prober's probes look for each other, and the sprayer dials from the socket that got through.
   */
  private async punch (strategy: Exclude<PunchStrategy, { kind: 'skip' }>, me: Side, peer: PeerId, targets: Array<{ ma: Multiaddr, endpoint: UdpEndpoint }>, token: Uint8Array | undefined, sockets: OverlaySocket[], exchangeSignal: AbortSignal, cost: BirthdayCost): Promise<Connection> {
    const birthday = strategy.kind === 'birthday' && token != null ? strategy : undefined
    const signal = birthday == null
      ? exchangeSignal
      : AbortSignal.any([AbortSignal.timeout(this.birthday.timeBudgetMs), this.shutdown.signal])
    const stop = new AbortController()
    const punchSignal = AbortSignal.any([signal, stop.signal])
    const direct = this.waitForDirect(peer, signal)
    const attempts: Array<Promise<unknown>> = [direct]
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

  private birthdayAvailable (peer: PeerId): boolean {
    return this.birthday.enabled && this.birthdayBudget.available(peer.toString())
  }

  private waitForDirect (peer: PeerId, signal: AbortSignal): Promise<Connection> {
    return new Promise((resolve, reject) => {
      const onOpen = (evt: CustomEvent<Connection>): void => {
        const connection = evt.detail
        if (!connection.remotePeer.equals(peer) || isRelayed(connection.remoteAddr)) return
        cleanup()
        resolve(connection)
      }
      const onAbort = (): void => {
        cleanup()
        reject(new Error(`no direct connection within ${this.init.timeoutMs} ms`))
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
