import { serviceDependencies } from '@libp2p/interface'
import { TypedEventEmitter } from 'main-event'
import type { ComponentLogger, Connection, Libp2pEvents, Logger, PeerId, Startable, Stream, TypedEventTarget } from '@libp2p/interface'
import type { ConnectionManager, Registrar, TransportManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { UdpEndpoint } from '../transport/index.js'
import type { OverlaySocket } from '../transport/overlay-socket.js'
import { PROBE_TOKEN_LENGTH } from '../transport/control-message.js'
import { PathLostError } from '../transport/liveness.js'
import { isRelayed } from '../core/relay-address.js'
import type { NatMappingProfile } from '../nat/mapping-profile.js'
import { HolePunch } from './pb/hole-punch.js'
import { BIRTHDAY_DEFAULTS } from './birthday.js'
import type { BirthdaySettings } from './birthday.js'
import { systemClock } from './clock.js'
import type { Clock } from './clock.js'
import { EarlyDial } from './early-dial.js'
import { DCUTR_PROTOCOL, DEFAULT_PUNCH_INTERVAL_MS, DEFAULT_RETRIES, DEFAULT_TIMEOUT_MS } from './constants.js'
import { asHolePunchError, cutShortReason, HolePunchError, NO_UDP_PATH_LOCAL } from './errors.js'
import { connectMessage, DcutrMessages, initiatorPlan, responderPlan, syncMessage } from './exchange.js'
import { dialableLanCandidates, ownLanCandidates, sharesPublicIp } from './lan-candidates.js'
import { PunchTally } from './outcome.js'
import type { HolePuncherEvents, HolePunchOutcome } from './outcome.js'
import { PunchDialer } from './punch-dialer.js'

export interface HolePuncherInit {
  /**
   * How long one attempt may take, from CONNECT to a direct connection, in ms
   *
   * @default 5000
   */
  timeoutMs?: number
  /**
   * Attempts per relayed connection
   *
   * @default 3
   */
  retries?: number
  /**
   * How often the SYNC sender sends punch datagrams, in ms
   *
   * @default 25
   */
  punchIntervalMs?: number
  /**
   * Punch to private addresses too (peers on one LAN, loopback)
   *
   * @default false
   */
  allowPrivateAddresses?: boolean
  /**
   * This node's public UDP overlay addresses, as observed by its gateways (trusted, no AutoNAT round). May wait
   * (at most until `signal` aborts) while they are being learnt again, after a network change.
   */
  publicAddresses: (signal: AbortSignal) => Multiaddr[] | Promise<Multiaddr[]>
  /**
   * How this node's NAT maps ports, as far as it knows; decides plain DCUtR, birthday punch or none
   *
   * @default async () => ({ kind: 'unknown' })
   */
  natMapping?: () => Promise<NatMappingProfile>
  /**
   * Whether and within which bounds to birthday punch (see BirthdaySettings for each bound's default)
   *
   * @default { enabled: true, ...BIRTHDAY_DEFAULTS }
   */
  birthday?: Partial<BirthdaySettings> & { enabled?: boolean }
  /**
   * The time the punch sees (costs, the birthday budget); tests script their own
   *
   * @default systemClock (Date.now)
   */
  clock?: Clock
}

export interface HolePunchComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
  transportManager: TransportManager
  events: TypedEventTarget<Libp2pEvents>
  logger: ComponentLogger
}

/**
 * DCUtR over the UDP overlay. Roles follow the spec's UDP variant: B (the side that received the relayed
 * connection) sends CONNECT, sends SYNC once the answer is in, then punches from its one socket and accepts;
 * A starts its half (the dial, or its part of a birthday punch) as soon as it has answered CONNECT, and its
 * retransmitted HELLOs are the other half of the punch. B dials as well,
 * which is what gets through when only A is reachable (A public, B behind a symmetric NAT); whichever direct
 * connection opens first is the result. The relayed connection is left open as the fallback path.
 */
export class HolePuncher extends TypedEventEmitter<HolePuncherEvents> implements Startable {
  readonly [serviceDependencies] = ['@libp2p/identify']
  readonly [Symbol.toStringTag] = '@natmesh/hole-puncher'

  private readonly components: HolePunchComponents
  private readonly timeoutMs: number
  private readonly retries: number
  private readonly allowPrivateAddresses: boolean
  private readonly publicAddresses: (signal: AbortSignal) => Multiaddr[] | Promise<Multiaddr[]>
  private readonly natMapping: () => Promise<NatMappingProfile>
  private readonly clock: Clock
  private readonly dialer: PunchDialer
  private readonly earlyDial: EarlyDial
  private readonly log: Logger
  private readonly inProgress = new Set<string>()
  /** relayed connections a punch was started for: by connection:open, and again by identify's topology */
  private readonly punched = new WeakSet<Connection>()
  /** direct connections dropped because a new relayed one showed they are dead: the punch on that one replaces them */
  private readonly superseded = new WeakSet<Connection>()
  /** per relayed connection punched over: aborted when a newer one to the same peer replaces it */
  private readonly replaced = new WeakMap<Connection, AbortController>()
  /** per peer, the direct connection the last success told of (see report) */
  private readonly toldDirect = new Map<string, Connection>()
  /** the punch (initiate) running per peer, so a newer relayed connection's punch starts once the old one is cut short */
  private readonly punching = new Map<string, Promise<HolePunchOutcome>>()
  private topologyId?: string
  private shutdown = new AbortController()

  constructor (components: HolePunchComponents, init: HolePuncherInit) {
    super()
    this.components = components
    this.timeoutMs = init.timeoutMs ?? DEFAULT_TIMEOUT_MS
    this.retries = init.retries ?? DEFAULT_RETRIES
    this.allowPrivateAddresses = init.allowPrivateAddresses ?? false
    this.publicAddresses = init.publicAddresses
    this.natMapping = init.natMapping ?? (async () => ({ kind: 'unknown' }))
    this.clock = init.clock ?? systemClock
    this.dialer = new PunchDialer(components, {
      timeoutMs: this.timeoutMs,
      punchIntervalMs: init.punchIntervalMs ?? DEFAULT_PUNCH_INTERVAL_MS,
      birthday: { ...BIRTHDAY_DEFAULTS, enabled: true, ...init.birthday },
      clock: this.clock
    })
    this.log = components.logger.forComponent('natmesh:hole-puncher')
    this.earlyDial = new EarlyDial({
      dialer: this.dialer,
      natMapping: this.natMapping,
      allowPrivateAddresses: this.allowPrivateAddresses,
      timeoutMs: this.timeoutMs,
      clock: this.clock,
      log: this.log,
      report: (outcome) => { this.report(outcome) }
    })
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
    const connection = evt.detail
    if (isRelayed(connection.remoteAddr)) this.punchRelayed(connection)
    else connection.addEventListener('close', (closed) => { this.directClosed(connection, closed.error) }, { once: true })
  }

  private directClosed (connection: Connection, error?: Error): void {
    if (this.toldDirect.get(connection.remotePeer.toString()) === connection) this.toldDirect.delete(connection.remotePeer.toString())
    if (error instanceof PathLostError) this.directLost(connection)
  }

  /** A forwarded circuit's gateway told us where the remote is mapped: dial it now (see early-dial.ts) */
  punchEarly (peer: PeerId, at: UdpEndpoint, relayedSince: number): void {
    this.earlyDial.start(peer, at, relayedSince, this.shutdown.signal)
  }

  /**
   * A direct connection whose path is gone (it fell silent: a NAT restarted, a network changed) while a relayed
   * one we received lives on: punch again over that one. A connection closed on purpose starts nothing.
   */
  private directLost (lost: Connection): void {
    const peer = lost.remotePeer
    if (this.superseded.has(lost) || this.inProgress.has(peer.toString()) || this.dialer.directConnection(peer) != null) return
    const relayed = this.components.connectionManager.getConnections(peer)
      .find(conn => conn.status === 'open' && isRelayed(conn.remoteAddr) && conn.direction === 'inbound')
    if (relayed != null) this.punch(relayed)
  }

  /**
   * B's side starts one punch per relayed connection it received. A remote that dials us through a relay while we
   * hold a direct connection to it has none (a peer uses its direct connection while it has one): ours runs over
   * a path that is gone (the remote's network changed) and would pass for the punch's result, so it is dropped.
   */
  private punchRelayed (connection: Connection): void {
    if (!isRelayed(connection.remoteAddr) || connection.direction !== 'inbound' || this.punched.has(connection)) return
    this.punched.add(connection)
    for (const stale of this.components.connectionManager.getConnections(connection.remotePeer)) {
      // one opened since this connection began came from its circuit's early dials (punchEarly): it is the punch
      if (stale.status !== 'open' || isRelayed(stale.remoteAddr) || stale.timeline.open >= connection.timeline.open) continue
      this.superseded.add(stale)
      stale.abort(new Error('the remote reached us through a relay: its end of this direct path is gone'))
    }
    // a punch still running over an older relayed connection (one its network change left behind) gives way
    for (const older of this.components.connectionManager.getConnections(connection.remotePeer)) {
      if (older !== connection) this.replaced.get(older)?.abort(cutShortReason('a newer relayed connection replaced this one'))
    }
    this.punch(connection)
  }

  /** initiate() over `relayed`, once a punch to the same peer still winding down has ended */
  private punch (relayed: Connection): void {
    const key = relayed.remotePeer.toString()
    if (!this.replaced.has(relayed)) this.replaced.set(relayed, new AbortController())
    const previous = this.punching.get(key)
    const punch = (previous ?? Promise.resolve()).catch(() => {}).then(async () => this.initiate(relayed))
    this.punching.set(key, punch)
    void punch.finally(() => { if (this.punching.get(key) === punch) this.punching.delete(key) })
  }

  async stop (): Promise<void> {
    this.components.events.removeEventListener('connection:open', this.onConnectionOpen)
    this.shutdown.abort(cutShortReason('this peer is stopping'))
    await this.components.registrar.unhandle(DCUTR_PROTOCOL)
    if (this.topologyId != null) this.components.registrar.unregister(this.topologyId)
  }

  /** B's side: drive the exchange over the relayed connection, then punch and wait for A's dial. */
  async initiate (relayed: Connection): Promise<HolePunchOutcome> {
    const peer = relayed.remotePeer
    const key = peer.toString()
    if (this.inProgress.has(key)) return this.report({ peer, outcome: 'skipped', attempts: 0, reason: 'a hole punch to this peer is already running', code: 'IN_PROGRESS' })
    this.inProgress.add(key)
    try {
      const tally = new PunchTally(peer, this.clock)
      const direct = this.dialer.directConnection(peer)
      if (direct != null) {
        // opened since this relayed connection began: the early dials its circuit started (a plain punch) got there first
        if (direct.timeline.open >= relayed.timeline.open) {
          tally.strategy = 'dcutr'
          return this.report(tally.success(1, direct, relayed))
        }
        return this.report({ peer, outcome: 'skipped', attempts: 0, reason: 'already connected directly', code: 'ALREADY_DIRECT' })
      }
      const replaced = this.replaced.get(relayed)?.signal
      const ownAddresses = await this.publicAddresses(AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(this.timeoutMs), ...(replaced != null ? [replaced] : [])]))
      if (replaced?.aborted === true) return this.report(tally.ended(0, cutShortReason('a newer relayed connection replaced this one')))
      if (ownAddresses.length === 0) return this.report({ peer, outcome: 'skipped', attempts: 0, reason: NO_UDP_PATH_LOCAL, code: 'NO_UDP_PATH' })
      let lastError: HolePunchError | undefined
      for (let attempt = 1; attempt <= this.retries; attempt++) {
        if (relayed.status !== 'open') return this.report(tally.ended(attempt - 1, new HolePunchError('RELAY_CLOSED', 'relayed connection closed')))
        try {
          return this.report(tally.success(attempt, await this.attemptAsB(relayed, ownAddresses, tally), relayed))
        } catch (err) {
          lastError = err as HolePunchError
          if (lastError.skipped || lastError.code === 'CUT_SHORT') return this.report(tally.ended(attempt, lastError))
          this.log('attempt %d/%d to %p failed - %s', attempt, this.retries, peer, lastError.message)
        }
      }
      return this.report(lastError != null ? tally.ended(this.retries, lastError) : tally.outcome({ outcome: 'failure', attempts: 0, reason: 'no attempt made' }))
    } finally {
      this.inProgress.delete(key)
    }
  }

  /** One attempt of B's; whatever goes wrong is thrown as a HolePunchError. */
  private async attemptAsB (relayed: Connection, ownAddresses: Multiaddr[], tally: PunchTally): Promise<Connection> {
    const peer = relayed.remotePeer
    const started = this.clock.now()
    const { signal, cut, release } = this.attemptSignal(relayed)
    const lanStop = new AbortController()
    let stream: Stream | undefined
    let sockets: OverlaySocket[] = []
    tally.newAttempt()
    try {
      // a remote without DCUtR refuses the protocol, which ends up as NO_DCUTR
      stream = await relayed.newStream(DCUTR_PROTOCOL, { signal, runOnLimitedConnection: true })
      tally.mark('stream', relayed)
      const messages = new DcutrMessages(stream)
      const ownMapping = await this.natMapping()
      // the token offers a birthday punch; the responder echoes it to accept
      const token = this.dialer.birthdayAvailable(peer) ? crypto.getRandomValues(new Uint8Array(PROBE_TOKEN_LENGTH)) : undefined
      await messages.write(connectMessage(ownAddresses, ownMapping, token, []), signal)
      const connect = await messages.read(HolePunch.Type.CONNECT, signal)
      tally.mark('connect', relayed)
      const plan = initiatorPlan(ownAddresses, ownMapping, token, connect, this.allowPrivateAddresses)
      tally.strategy = plan.strategy.kind
      if (!plan.go) {
        await messages.close(signal)
        throw plan.refusal
      }
      sockets = this.dialer.openSprayerSockets(plan.strategy, 'initiator', tally.cost)
      const ownLan = plan.sameSite ? ownLanCandidates(this.components.transportManager.getAddrs()) : []
      await messages.write(syncMessage(ownLan), signal)
      tally.mark('sync', relayed)
      // a LAN needs no punch: dialled at once
      const lanDials = this.dialer.dialLan(peer, plan.sameSite ? dialableLanCandidates(connect.localAddresses) : [], AbortSignal.any([signal, lanStop.signal]))
      // Every punch starts now. The responder started its half as soon as it had answered CONNECT (see respond):
      // its dial has opened its NAT for our punch datagrams and HELLOs, and each side's retransmitted HELLOs get
      // through once the other's NAT has seen its first packet. A birthday sprayer's mappings, re-sent every
      // sprayIntervalMs, are open before the other side's probes arrive; a responding sprayer has been spraying
      // since it answered, so a prober here has nothing to wait for either.
      const direct = await this.dialer.punch(plan.strategy, 'initiator', peer, plan.targets, token, sockets, { exchange: signal, cut }, tally.cost, lanDials, () => { tally.mark('answered', relayed) })
      await messages.close(signal)
      return direct
    } catch (err) {
      this.dialer.closeSockets(sockets)
      const failure = asHolePunchError(err, signal, this.clock.now() - started)
      if (!failure.skipped) stream?.abort(err instanceof Error ? err : failure)
      throw failure
    } finally {
      lanStop.abort()
      release()
    }
  }

  /** A's side: answer CONNECT with our addresses, and start our half of the punch at once. */
  private async respond (stream: Stream, relayed: Connection): Promise<void> {
    const peer = relayed.remotePeer
    const { signal, cut, release } = this.attemptSignal(relayed)
    const lanStop = new AbortController()
    const started = this.clock.now()
    const tally = new PunchTally(peer, this.clock)
    let sockets: OverlaySocket[] = []
    // learnt while CONNECT is on its way: the initiator times our answer as the relay's round trip
    const mapping = this.natMapping().catch((): NatMappingProfile => ({ kind: 'unknown' }))
    try {
      const messages = new DcutrMessages(stream)
      const connect = await messages.read(HolePunch.Type.CONNECT, signal)
      tally.mark('connect', relayed)
      const ownMapping = await mapping
      const token = connect.probeToken?.byteLength === PROBE_TOKEN_LENGTH && this.dialer.birthdayAvailable(peer) ? connect.probeToken : undefined
      const ownAddresses = await this.publicAddresses(signal)
      // our LAN addresses go only to a peer behind our own public IP (see lan-candidates.ts)
      const ownLan = sharesPublicIp(ownAddresses, connect.observedAddresses) ? ownLanCandidates(this.components.transportManager.getAddrs()) : []
      const plan = responderPlan(ownAddresses, ownMapping, token, connect, ownLan.length > 0, this.allowPrivateAddresses)
      tally.strategy = plan.strategy.kind
      await messages.write(connectMessage(ownAddresses, ownMapping, token, ownLan), signal)
      if (!plan.go) {
        await messages.close(signal)
        this.report(tally.ended(1, plan.refusal))
        return
      }
      sockets = this.dialer.openSprayerSockets(plan.strategy, 'responder', tally.cost)
      const sync = messages.read(HolePunch.Type.SYNC, signal).then((sync) => { tally.mark('sync', relayed); return sync })
      // Our half starts now, without waiting for SYNC, which is queued behind whatever else crosses the relayed
      // path (3-7 round trips behind a session's data at 100 ms RTT) and only carries the LAN candidates here.
      // Plain DCUtR: our retransmitted HELLOs are a punch of their own that gets through once the initiator's NAT
      // has seen its first punch datagram, which it sends on reading our CONNECT. Birthday: a sprayer's mappings
      // are open before the initiator's probes come; a prober's first probes may beat the initiator's spray by
      // up to a relay round trip and be lost, a few dozen of the thousands the attempt may send.
      const lanDials = this.dialer.dialLanWhenKnown(peer, sync.then((s) => plan.sameSite ? dialableLanCandidates(s.localAddresses) : []), AbortSignal.any([signal, lanStop.signal]))
      const direct = await this.dialer.punch(plan.strategy, 'responder', peer, plan.targets, token, sockets, { exchange: signal, cut }, tally.cost, [lanDials], () => { tally.mark('answered', relayed) })
      await messages.close(signal)
      this.report(tally.success(1, direct, relayed))
    } catch (err) {
      this.dialer.closeSockets(sockets)
      const failure = asHolePunchError(err, signal, this.clock.now() - started)
      this.log('responding to hole punch from %p failed - %s', peer, failure.message)
      stream.abort(err instanceof Error ? err : failure)
      this.report(tally.outcome({ outcome: 'failure', attempts: 1, reason: failure.message, code: failure.code }))
    } finally {
      lanStop.abort()
      release()
    }
  }

  /**
   * One attempt's signal: its time limit, this peer stopping, or the relayed connection closing or being replaced
   * by a newer one (the exchange runs over it, and without it the attempt has no purpose), whichever comes first. `release` drops the listener.
   */
  private attemptSignal (relayed: Connection): { signal: AbortSignal, cut: AbortSignal, release: () => void } {
    const closed = new AbortController()
    const onClose = (evt: CustomEvent<Connection>): void => {
      if (evt.detail.id === relayed.id) closed.abort(cutShortReason('the relayed connection closed'))
    }
    this.components.events.addEventListener('connection:close', onClose)
    if (relayed.status !== 'open') closed.abort(cutShortReason('the relayed connection closed'))
    const replaced = this.replaced.get(relayed)?.signal
    const cut = AbortSignal.any([this.shutdown.signal, closed.signal, ...(replaced != null ? [replaced] : [])])
    return {
      signal: AbortSignal.any([AbortSignal.timeout(this.timeoutMs), cut]),
      cut,
      release: () => { this.components.events.removeEventListener('connection:close', onClose) }
    }
  }

  /** Tells of a finished punch; a success while the one told before is still open is that path found again (not told) */
  private report (outcome: HolePunchOutcome): HolePunchOutcome {
    if (outcome.outcome === 'success' && outcome.direct != null) {
      const key = outcome.peer.toString()
      const told = this.toldDirect.get(key)
      if (told === outcome.direct || told?.status === 'open') return outcome
      this.toldDirect.set(key, outcome.direct)
    }
    this.log('hole punch to %p: %s after %d attempt(s)%s', outcome.peer, outcome.outcome, outcome.attempts, outcome.reason != null ? ` (${outcome.reason})` : '')
    this.safeDispatchEvent('hole-punch', { detail: outcome })
    return outcome
  }
}
