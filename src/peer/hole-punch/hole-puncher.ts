import { serviceDependencies } from '@libp2p/interface'
import { pbStream } from '@libp2p/utils'
import { TypedEventEmitter } from 'main-event'
import type { ComponentLogger, Connection, Libp2pEvents, Logger, PeerId, Startable, Stream, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager, Registrar, TransportManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isUdxTransport } from '../../transport/index.js'
import type { UdxTransport } from '../../transport/index.js'
import { HolePunch } from '../pb/hole-punch.js'
import { punchableAddresses } from './dialable-addresses.js'
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
  /** from the relayed connection opening to the direct connection opening */
  msSinceRelay?: number
  reason?: string
  direct?: Connection
}

export interface HolePuncherEvents {
  'hole-punch': CustomEvent<HolePunchOutcome>
}

const defaults = { timeoutMs: 5000, retries: 3, punchIntervalMs: 25, allowPrivateAddresses: false }

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
  private readonly init: Required<HolePuncherInit>
  private readonly log: Logger
  private readonly inProgress = new Set<string>()
  private topologyId?: string
  private shutdown = new AbortController()

  constructor (components: HolePunchComponents, init: HolePuncherInit) {
    super()
    this.components = components
    this.init = { ...defaults, ...init }
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
      for (let attempt = 1; attempt <= this.init.retries; attempt++) {
        if (relayed.status !== 'open') return this.report({ peer, outcome: 'failure', attempts: attempt - 1, reason: 'relayed connection closed' })
        try {
          const direct = await this.attemptAsB(relayed, ownAddresses)
          return this.report({ peer, outcome: 'success', attempts: attempt, msSinceRelay: openedAt(direct) - openedAt(relayed), direct })
        } catch (err) {
          lastError = err instanceof Error ? err.message : String(err)
          this.log('attempt %d/%d to %p failed - %s', attempt, this.init.retries, peer, lastError)
        }
      }
      return this.report({ peer, outcome: 'failure', attempts: this.init.retries, reason: lastError })
    } finally {
      this.inProgress.delete(key)
    }
  }

  private async attemptAsB (relayed: Connection, ownAddresses: Multiaddr[]): Promise<Connection> {
    const signal = AbortSignal.any([AbortSignal.timeout(this.init.timeoutMs), this.shutdown.signal])
    const stream = await relayed.newStream(DCUTR_PROTOCOL, { signal, runOnLimitedConnection: true })
    const punchStop = new AbortController()
    try {
      const messages = pbStream(stream, { maxDataLength: MAX_MESSAGE_SIZE }).pb(HolePunch)
      const sentAt = Date.now()
      await messages.write({ type: HolePunch.Type.CONNECT, observedAddresses: ownAddresses.map(ma => ma.bytes) }, { signal })
      const connect = await messages.read({ signal })
      if (connect.type !== HolePunch.Type.CONNECT) throw new Error(`expected CONNECT, got ${connect.type ?? 'no type'}`)
      const targets = punchableAddresses(connect.observedAddresses, this.init.allowPrivateAddresses)
      if (targets.length === 0) throw new Error('the remote offered no public UDP overlay address')
      const rtt = Date.now() - sentAt
      await messages.write({ type: HolePunch.Type.SYNC, observedAddresses: [] }, { signal })
      const direct = this.waitForDirect(relayed.remotePeer, signal)
      await delay(rtt / 2, signal)
      const transport = this.udxTransport()
      const punchSignal = AbortSignal.any([signal, punchStop.signal])
      for (const target of targets) void transport.punch(target.endpoint, punchSignal, this.init.punchIntervalMs)
      // B also dials: when A is not behind a NAT (or behind one that keeps its port for us) this connects even
      // if A's dial cannot reach B, e.g. because B's NAT is symmetric and A only knows B's gateway-facing port
      this.components.connectionManager.openConnection(targets.map(t => t.ma), { signal: punchSignal, force: true, priority: 100 })
        .catch(() => { /* A's dial may be the one that gets through */ })
      const connection = await direct
      await stream.close({ signal }).catch(() => {})
      return connection
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    } finally {
      punchStop.abort()
    }
  }

  /** A's side: answer CONNECT with our addresses, and dial B the moment SYNC arrives. */
  private async respond (stream: Stream, relayed: Connection): Promise<void> {
    const peer = relayed.remotePeer
    const signal = AbortSignal.any([AbortSignal.timeout(this.init.timeoutMs), this.shutdown.signal])
    try {
      const messages = pbStream(stream, { maxDataLength: MAX_MESSAGE_SIZE }).pb(HolePunch)
      const connect = await messages.read({ signal })
      if (connect.type !== HolePunch.Type.CONNECT) throw new Error(`expected CONNECT, got ${connect.type ?? 'no type'}`)
      const targets = punchableAddresses(connect.observedAddresses, this.init.allowPrivateAddresses)
      await messages.write({ type: HolePunch.Type.CONNECT, observedAddresses: this.init.publicAddresses().map(ma => ma.bytes) }, { signal })
      const sync = await messages.read({ signal })
      if (sync.type !== HolePunch.Type.SYNC) throw new Error(`expected SYNC, got ${sync.type ?? 'no type'}`)
      if (targets.length === 0) throw new Error('the remote offered no public UDP overlay address')
      // B dials too; whichever direct connection opens first, ours or B's, is the result
      const dialStop = new AbortController()
      const dialed = this.components.connectionManager.openConnection(targets.map(t => t.ma), { signal: AbortSignal.any([signal, dialStop.signal]), force: true, priority: 100 })
      const direct = await Promise.any([dialed, this.waitForDirect(peer, signal)])
        .catch((err: AggregateError) => { throw err.errors[0] instanceof Error ? err.errors[0] : new Error('no direct connection') })
        .finally(() => { dialStop.abort() })
      dialed.catch(() => {})
      if (isRelayed(direct.remoteAddr)) throw new Error('dial returned a relayed connection')
      await stream.close({ signal }).catch(() => {})
      this.report({ peer, outcome: 'success', attempts: 1, msSinceRelay: openedAt(direct) - openedAt(relayed), direct })
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err)
      this.log('responding to hole punch from %p failed - %s', peer, reason)
      stream.abort(err instanceof Error ? err : new Error(reason))
      this.report({ peer, outcome: 'failure', attempts: 1, reason })
    }
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
