/**
 * Our half of the punch, once both sides know the strategy from the exchange: punch datagrams and the direct
 * dials (plain DCUtR), the spray or the probes (birthday), the LAN dials (same site), and the wait for whichever
 * direct connection opens first.
 */
import type { Connection, Libp2pEvents, PeerId, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager, TransportManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isUdxTransport, toUdxMultiaddr, UDX_ANSWERED } from '../transport/index.js'
import type { UdpEndpoint, UdxTransport } from '../transport/index.js'
import type { OverlaySocket } from '../transport/overlay-socket.js'
import { dialNow } from '../transport/address-dialer.js'
import { isRelayed } from '../core/relay-address.js'
import { AttemptBudget } from './attempt-budget.js'
import type { PunchTarget } from './dialable-addresses.js'
import { probe, spray } from './birthday.js'
import type { BirthdayCost, BirthdaySettings } from './birthday.js'
import type { Clock } from './clock.js'
import { HolePunchError } from './errors.js'
import { portCandidates, predictedPorts } from './port-candidates.js'
import type { PunchStrategy, Side } from './strategy.js'

export interface PunchDialerComponents {
  connectionManager: ConnectionManager
  transportManager: TransportManager
  events: TypedEventTarget<Libp2pEvents>
}

export interface PunchDialerInit {
  /** how long the plain DCUtR punch may wait for a direct connection (the attempt's own limit) */
  timeoutMs: number
  punchIntervalMs: number
  birthday: BirthdaySettings & { enabled: boolean }
  clock: Clock
}

export class PunchDialer {
  private readonly budget: AttemptBudget

  constructor (private readonly components: PunchDialerComponents, private readonly init: PunchDialerInit) {
    this.budget = new AttemptBudget(init.birthday.attemptsPerPeerPerMinute, init.clock.now)
  }

  /** whether this side may offer (or accept) a birthday punch to `peer` now */
  birthdayAvailable (peer: PeerId): boolean {
    return this.init.birthday.enabled && this.budget.available(peer.toString())
  }

  /**
   * Plain DCUtR: the initiator sends punch datagrams, and both sides dial; whichever direct connection opens
   * first is the result. Birthday: the sprayer's extra sockets and the prober's probes look for each other, and
   * the sprayer dials from the socket that got through. `onAnswered`: one of our direct dials got an answer from
   * the remote overlay socket (its HELLO was accepted), for the outcome's phases.
   */
  async punch (strategy: Exclude<PunchStrategy, { kind: 'skip' }>, me: Side, peer: PeerId, targets: PunchTarget[], token: Uint8Array | undefined, sockets: OverlaySocket[], signals: { exchange: AbortSignal, cut: AbortSignal }, cost: BirthdayCost, lanDials: Array<Promise<Connection>> = [], onAnswered: () => void = () => {}): Promise<Connection> {
    const birthday = strategy.kind === 'birthday' && token != null ? strategy : undefined
    const settings = this.init.birthday
    // a birthday punch has its own time budget, counted from here
    const signal = birthday == null
      ? signals.exchange
      : AbortSignal.any([AbortSignal.timeout(settings.timeBudgetMs), signals.cut])
    const stop = new AbortController()
    const punchSignal = AbortSignal.any([signal, stop.signal])
    const direct = this.waitForDirect(peer, signal, birthday == null ? this.init.timeoutMs : settings.timeBudgetMs)
    const attempts: Array<Promise<unknown>> = [direct, ...lanDials]
    try {
      if (birthday == null) {
        if (me === 'initiator') {
          const transport = this.udxTransport()
          for (const target of targets) void transport.punch(target.endpoint, punchSignal, this.init.punchIntervalMs)
        }
        attempts.push(this.dial(targets.map(t => t.ma), punchSignal, onAnswered))
      } else {
        if (!this.budget.take(peer.toString())) throw new HolePunchError('BUDGET_SPENT', 'birthday punch budget for this peer used up')
        const [first] = targets
        if (first == null) throw new HolePunchError('NO_UDP_PATH', 'the remote offered no public UDP overlay address')
        if (birthday.sprayer === me) {
          attempts.push(this.sprayAndDial(peer, sockets, first.endpoint, token as Uint8Array, punchSignal, cost, onAnswered))
        } else {
          const predicted = birthday.predictedDelta != null ? predictedPorts(first.endpoint.port, birthday.predictedDelta, settings.sockets * 2) : []
          const ports = portCandidates(predicted)
          // the hit only stops our probing; the connection is the sprayer's dial, which waitForDirect sees
          probe(this.udxTransport().socket, first.endpoint.host, first.endpoint.family, ports, token as Uint8Array, settings, punchSignal, cost)
            .catch(() => {})
        }
      }
      const connection = await Promise.any(attempts)
        .catch((err: AggregateError) => { throw asDialError(err.errors[0]) }) as Connection
      if (isRelayed(connection.remoteAddr)) throw new HolePunchError('DIAL_FAILED', 'dial returned a relayed connection')
      return connection
    } finally {
      stop.abort()
      direct.catch(() => {})
    }
  }

  /** The sprayer's extra sockets, opened before SYNC so the spray starts on time; none for any other role. */
  openSprayerSockets (strategy: PunchStrategy, me: Side, cost: BirthdayCost): OverlaySocket[] {
    if (strategy.kind !== 'birthday' || strategy.sprayer !== me) return []
    const sockets = this.udxTransport().openExtraSockets(this.init.birthday.sockets)
    cost.sockets += sockets.length
    return sockets
  }

  /** After a failed attempt: closes the extra sockets (a no-op for those the spray already closed). */
  closeSockets (sockets: OverlaySocket[]): void {
    if (sockets.length === 0) return
    const transport = this.udxTransport()
    for (const socket of sockets) void transport.closeExtraSocket(socket)
  }

  /**
   * Dials the peer's LAN candidates, each on its own and beside the public punch (see dialNow): libp2p's dial
   * queue would try them one after another, behind a public address that never answers on a NAT without hairpinning.
   */
  dialLan (peer: PeerId, candidates: Multiaddr[], signal: AbortSignal): Array<Promise<Connection>> {
    return candidates.map(candidate => {
      const dialing = dialNow(this.components.transportManager, candidate.encapsulate(`/p2p/${peer.toString()}`), { signal })
      // handled here too: an attempt may end before it gets to wait for these
      dialing.catch(() => {})
      return dialing
    })
  }

  /**
   * `dialLan` for candidates still to come (the responder's, in SYNC): the first LAN connection, rejected when
   * there are no candidates, none connects, or they never come.
   */
  dialLanWhenKnown (peer: PeerId, candidates: Promise<Multiaddr[]>, signal: AbortSignal): Promise<Connection> {
    const dialing = candidates.then(async (known) => await Promise.any(this.dialLan(peer, known, signal)))
    // handled here too: an attempt may end before it gets to wait for this
    dialing.catch(() => {})
    return dialing
  }

  /**
   * A plain punch to `at`, the remote's mapping as our gateway sees it: our HELLOs from our one socket open our
   * NAT for the remote's, which it sends the same way (see HolePuncher.punchEarly).
   */
  dialMapping (peer: PeerId, at: UdpEndpoint, signal: AbortSignal): Promise<Connection> {
    return dialNow(this.components.transportManager, toUdxMultiaddr(at.host, at.port).encapsulate(`/p2p/${peer.toString()}`), { signal })
  }

  directConnection (peer: PeerId): Connection | undefined {
    return this.components.connectionManager.getConnections(peer)
      .find(conn => conn.status === 'open' && !isRelayed(conn.remoteAddr))
  }

  /** The sprayer's side of a birthday punch: find the socket that got through, then dial from it. */
  private async sprayAndDial (peer: PeerId, sockets: OverlaySocket[], target: UdpEndpoint, token: Uint8Array, signal: AbortSignal, cost: BirthdayCost, onAnswered: () => void): Promise<Connection> {
    const transport = this.udxTransport()
    const hit = await spray(transport, sockets, target, token, this.init.birthday, signal, cost)
    const release = transport.routeVia(hit.remote, hit.socket)
    try {
      return await this.dial([toUdxMultiaddr(hit.remote.host, hit.remote.port).encapsulate(`/p2p/${peer.toString()}`)], signal, onAnswered)
    } finally {
      release()
      // the socket lives as long as the connection it carries, and no longer if the dial failed
      hit.socket.closeWhenIdle()
    }
  }

  private async dial (addresses: Multiaddr[], signal: AbortSignal, onAnswered: () => void): Promise<Connection> {
    const onProgress = (evt: { type: string }): void => { if (evt.type === UDX_ANSWERED) onAnswered() }
    return await this.components.connectionManager.openConnection(addresses, { signal, force: true, priority: 100, onProgress })
  }

  private waitForDirect (peer: PeerId, signal: AbortSignal, limitMs: number): Promise<Connection> {
    const events = this.components.events
    return new Promise((resolve, reject) => {
      const onOpen = (evt: CustomEvent<Connection>): void => {
        const connection = evt.detail
        if (!connection.remotePeer.equals(peer) || isRelayed(connection.remoteAddr)) return
        cleanup()
        resolve(connection)
      }
      const onAbort = (): void => {
        cleanup()
        const reason: unknown = signal.reason
        reject(reason instanceof HolePunchError && reason.code === 'CUT_SHORT' ? reason : new HolePunchError('TIMEOUT', `no direct connection within ${limitMs} ms`))
      }
      const cleanup = (): void => {
        events.removeEventListener('connection:open', onOpen)
        signal.removeEventListener('abort', onAbort)
      }
      const existing = this.directConnection(peer)
      if (existing != null) { resolve(existing); return }
      // already aborted (the relay closed during the half round trip): an abort listener would never fire
      if (signal.aborted) { onAbort(); return }
      events.addEventListener('connection:open', onOpen)
      signal.addEventListener('abort', onAbort, { once: true })
    })
  }

  private udxTransport (): UdxTransport {
    const transport = this.components.transportManager.getTransports().find(isUdxTransport)
    if (transport == null) throw new HolePunchError('DIAL_FAILED', 'hole punching needs the UDP overlay transport')
    return transport
  }
}

/** The first attempt's error (the wait for a direct connection), coded; a dial error as DIAL_FAILED. */
function asDialError (err: unknown): HolePunchError {
  if (err instanceof HolePunchError) return err
  return new HolePunchError('DIAL_FAILED', err instanceof Error ? err.message : 'no direct connection')
}
