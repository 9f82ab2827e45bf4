import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { pbStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, Libp2p, Logger, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isUdxMultiaddr, UDX_ANSWERED } from '../transport/index.js'
import { PathLostError } from '../transport/liveness.js'
import type { DialAddress } from '../transport/address-dialer.js'
import type { OverlayTransport } from '../core/path.js'
import { HopMessage, Status } from '../relay/pb/circuit-hop.js'
import { isRelayed, relayAddress } from '../core/relay-address.js'
import { NatmeshError } from '../core/errors.js'
import { Backoff } from '../core/backoff.js'

/** what a link reports about its gateway */
export type GatewayLinkEvent =
  | { event: 'gateway-connected', gateway: string, transport: OverlayTransport, remoteAddr: string }
  | { event: 'gateway-lost', gateway: string, reason: string, retryInMs: number }
  /** the gateway was reached but answered the RESERVE with `status` (e.g. RESERVATION_REFUSED when it is full) */
  | { event: 'reservation-refused', gateway: string, code: 'RESERVATION_REFUSED', status: string, reason: string, retryInMs: number }
  /** a relay slot was reserved; relayAddrs are the addresses other peers dial to reach this one */
  | { event: 'reservation', gateway: string, relayAddrs: string[] }

export interface GatewayLinkInit {
  gateway: PeerId
  /** every known address of the gateway; UDP overlay and TCP ones are raced, UDP preferred */
  addresses: Multiaddr[]
  /** how long to wait for one address before trying the next */
  dialTimeoutMs: number
  /** while the link runs over TCP, UDP is tried again this often */
  udpRetryMs: number
  reconnect: { initialDelayMs: number, maxDelayMs: number }
  /** renew a reservation this long before it expires */
  refreshBeforeExpiryMs: number
  node: Libp2p
  /** dials one address outside libp2p's dial queue, so UDP and TCP attempts run side by side */
  dialAddress: DialAddress
  log: Logger
  emit: (event: GatewayLinkEvent) => void
}

/**
 * Keeps one gateway usable: a connection (UDP overlay and TCP raced, UDP preferred: only UDP can hole punch), a
 * relay reservation renewed before it expires, and reconnection with exponential backoff when the gateway goes
 * away. A link that came up over TCP moves to UDP as soon as UDP gets through: the UDP attempt of the race when it
 * finishes late, else a retry every `udpRetryMs` (the network may change under a UDP-blocked peer).
 */
export class GatewayLink {
  private readonly init: GatewayLinkInit
  private readonly log: Logger
  private connection?: Connection
  private timer?: NodeJS.Timeout
  private udpTimer?: NodeJS.Timeout
  private idleTimer?: NodeJS.Timeout
  /** a move to UDP is under way: at most one at a time */
  private movingToUdp = false
  /** the link has had a connection before: a new one is dialled fresh (the old may look open and be dead) */
  private connectedBefore = false
  /** networkChanged() dropped the connection, so it is dialled again at once; `connecting`: connectAndReserve() runs */
  private redialNow = false
  private connecting = false
  /** came up on a TCP connection that was already there, so the UDP attempt is still to be made */
  private udpUntried = false
  /** reconnect delays, jittered so peers of a restarted gateway don't all come back in the same instant */
  private readonly backoff: Backoff
  private stopped = true
  private relayAddrs: Multiaddr[] = []
  private expiresAt = 0

  constructor (init: GatewayLinkInit) {
    this.init = init
    this.log = init.log
    this.backoff = new Backoff({ initialMs: init.reconnect.initialDelayMs, maxMs: init.reconnect.maxDelayMs, jitter: true })
  }

  get gateway (): PeerId {
    return this.init.gateway
  }

  /** the gateway's configured addresses */
  get addresses (): Multiaddr[] {
    return this.init.addresses
  }

  /** addresses other peers dial to reach us through this gateway; empty while there is no reservation */
  get relayAddresses (): Multiaddr[] {
    return this.relayAddrs
  }

  /** the connection the reservation lives on; undefined while there is none */
  get activeConnection (): Connection | undefined {
    return this.connection
  }

  get transport (): OverlayTransport | undefined {
    if (this.connection == null) return undefined
    return isUdxMultiaddr(this.connection.remoteAddr) ? 'udx' : 'tcp'
  }

  start (): void {
    this.stopped = false
    this.schedule(0)
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
    clearTimeout(this.udpTimer)
    clearInterval(this.idleTimer)
  }

  /**
   * Our network changed: the connection runs over a path that is gone (it may still look open). It is dropped and
   * the gateway dialled again at once, whatever the backoff had reached. `keep`: a connection made since the change.
   */
  networkChanged (keep?: Connection): void {
    if (this.stopped || (keep != null && this.connection === keep)) return
    this.backoff.reset()
    this.redialNow = this.connection != null
    // a dial under way goes out over the new path already (the socket is the same)
    if (this.connection == null && !this.connecting) this.schedule(0)
    this.connection?.abort(new PathLostError('our network changed: this path is gone'))
  }

  /** The connection's own close event carries why it closed (e.g. its path fell silent); libp2p's does not. */
  private adopt (connection: Connection): void {
    if (connection === this.connection) return
    this.connection = connection
    connection.addEventListener('close', (evt) => { this.onConnectionClose(connection, evt.error) }, { once: true })
  }

  private onConnectionClose (closed: Connection, error?: Error): void {
    if (this.stopped || closed !== this.connection) return
    this.connection = undefined
    this.relayAddrs = []
    this.expiresAt = 0
    const retryInMs = this.redialNow ? 0 : this.backoff.next()
    this.redialNow = false
    const reason = error == null ? 'connection closed' : `connection closed: ${error.message}`
    this.init.emit({ event: 'gateway-lost', gateway: this.init.gateway.toString(), reason, retryInMs })
    this.schedule(retryInMs)
  }

  private schedule (delayMs: number): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => { void this.connectAndReserve() }, delayMs)
  }

  private async connectAndReserve (): Promise<void> {
    if (this.stopped) return
    this.connecting = true
    try {
      const connection = this.connection?.status === 'open' ? this.connection : await this.connect()
      this.adopt(connection)
      const expiresAt = await this.reserve(connection)
      this.expiresAt = expiresAt
      this.backoff.reset()
      this.schedule(refreshDelay(expiresAt - Date.now(), this.init.refreshBeforeExpiryMs))
      if (this.transport === 'tcp') this.scheduleUdpRetry(this.udpUntried ? 0 : this.init.udpRetryMs)
      this.udpUntried = false
    } catch (err) {
      // relay addresses of a reservation the gateway has dropped would send other peers nowhere
      if (Date.now() >= this.expiresAt) this.relayAddrs = []
      const retryInMs = this.backoff.next()
      const reason = err instanceof Error ? err.message : String(err)
      const gateway = this.init.gateway.toString()
      this.log('gateway %p unavailable - %s; retrying in %d ms', this.init.gateway, reason, retryInMs)
      if (err instanceof ReservationRefusedError) {
        // reached, but it said no: a full relay is not an unreachable one
        this.init.emit({ event: 'reservation-refused', gateway, code: err.code, status: err.status, reason, retryInMs })
      } else {
        this.init.emit({ event: 'gateway-lost', gateway, reason, retryInMs })
      }
      this.schedule(retryInMs)
    } finally {
      this.connecting = false
    }
  }

  private async connect (): Promise<Connection> {
    // the first time, the pool has usually just connected to probe the gateway: take that connection (a fresh one
    // only: an older one may look open and be dead)
    const existing = this.connectedBefore
      ? undefined
      : this.init.node.getConnections(this.init.gateway)
        .find(conn => conn.status === 'open' && !isRelayed(conn.remoteAddr) && Date.now() - conn.timeline.open < FRESH_CONNECTION_MS)
    this.connectedBefore = true
    if (existing != null) {
      this.udpUntried = !isUdxMultiaddr(existing.remoteAddr)
      this.emitConnected(existing)
      return existing
    }
    const connection = await dialGateway(this.init.node, this.init.dialAddress, this.init.gateway, this.init.addresses, {
      timeoutMs: this.init.dialTimeoutMs,
      force: true,
      onLateUdp: (udp) => { void this.moveToUdp(udp) }
    })
    this.emitConnected(connection)
    return connection
  }

  private emitConnected (connection: Connection): void {
    const transport = isUdxMultiaddr(connection.remoteAddr) ? 'udx' : 'tcp'
    this.init.emit({ event: 'gateway-connected', gateway: this.init.gateway.toString(), transport, remoteAddr: connection.remoteAddr.toString() })
  }

  private scheduleUdpRetry (delayMs: number): void {
    if (this.stopped || !this.init.addresses.some(isUdxMultiaddr)) return
    clearTimeout(this.udpTimer)
    this.udpTimer = setTimeout(() => { void this.retryUdp() }, delayMs)
  }

  private async retryUdp (): Promise<void> {
    if (this.stopped || this.transport !== 'tcp' || this.movingToUdp) return
    try {
      const udp = await dialGateway(this.init.node, this.init.dialAddress, this.init.gateway, this.init.addresses.filter(isUdxMultiaddr), { timeoutMs: this.init.dialTimeoutMs, force: true })
      await this.moveToUdp(udp)
    } catch (err) {
      this.log('gateway %p: UDP still does not get through - %s', this.init.gateway, err instanceof Error ? err.message : String(err))
    }
    if (this.transport === 'tcp') this.scheduleUdpRetry(this.init.udpRetryMs)
  }

  /**
   * Takes the reservation over to a UDP connection (our observed UDP address, what hole punches offer, only comes
   * over UDP) and closes the TCP one once no stream is left on it: relayed circuits on it keep running until they end.
   */
  private async moveToUdp (udp: Connection): Promise<void> {
    const previous = this.connection
    if (this.stopped || this.movingToUdp || (previous != null && previous.status === 'open' && isUdxMultiaddr(previous.remoteAddr))) {
      if (udp !== previous) await udp.close().catch(() => {})
      return
    }
    this.movingToUdp = true
    try {
      const expiresAt = await this.reserve(udp)
      this.adopt(udp)
      this.expiresAt = expiresAt
      this.backoff.reset()
      clearTimeout(this.udpTimer)
      this.schedule(refreshDelay(expiresAt - Date.now(), this.init.refreshBeforeExpiryMs))
      this.emitConnected(udp)
      if (previous != null && previous !== udp) this.closeWhenIdle(previous)
    } catch (err) {
      this.log('gateway %p: moving the link to UDP failed - %s', this.init.gateway, err instanceof Error ? err.message : String(err))
      await udp.close().catch(() => {})
    } finally {
      this.movingToUdp = false
    }
  }

  private closeWhenIdle (connection: Connection): void {
    clearInterval(this.idleTimer)
    this.idleTimer = setInterval(() => {
      if (connection.status === 'open' && connection.streams.length > 0) return
      clearInterval(this.idleTimer)
      void connection.close().catch(() => {})
    }, IDLE_CHECK_MS)
  }

  /** Sends a circuit v2 RESERVE; returns when the reservation expires (ms since epoch). */
  private async reserve (connection: Connection): Promise<number> {
    const signal = AbortSignal.timeout(this.init.dialTimeoutMs * 2)
    const stream = await connection.newStream(RELAY_V2_HOP_CODEC, { signal })
    try {
      const hop = pbStream(stream, { maxDataLength: 16 * 1024 }).pb(HopMessage)
      await hop.write({ type: HopMessage.Type.RESERVE }, { signal })
      const response = await hop.read({ signal })
      if (response.status !== Status.OK) throw new ReservationRefusedError(response.status ?? Status.UNUSED)
      const expire = Number(response.reservation?.expire ?? 0n) * 1000
      if (!(expire > Date.now())) throw new Error('gateway sent a reservation that has already expired')
      const gatewayAddrs = (response.reservation?.addrs ?? []).flatMap(bytes => {
        try { return [multiaddr(bytes)] } catch { return [] }
      })
      const gw = this.init.gateway.toString()
      // a gateway lists its /udx addresses only to peers it knows speak the overlay (stock clients reject them);
      // one reached over TCP before identify finished may leave them out, but others can still use them
      const bases = gatewayAddrs.length > 0 ? gatewayAddrs : [connection.remoteAddr]
      if (!bases.some(isUdxMultiaddr)) bases.push(...this.init.addresses.filter(isUdxMultiaddr))
      this.relayAddrs = bases
        .filter(ma => !isRelayed(ma))
        .map(ma => relayAddress(ma, this.init.gateway, this.init.node.peerId))
      await stream.close({ signal }).catch(() => {})
      this.init.emit({ event: 'reservation', gateway: gw, relayAddrs: this.relayAddrs.map(ma => ma.toString()) })
      return expire
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }
}

/** why a relay answers a RESERVE with each refusing status (circuit relay v2 spec) */
const REFUSALS: Partial<Record<Status, string>> = {
  [Status.RESERVATION_REFUSED]: 'the relay is full or takes no reservations',
  [Status.RESOURCE_LIMIT_EXCEEDED]: 'too many reservations or requests from this peer or its address',
  [Status.PERMISSION_DENIED]: 'this peer may not reserve on the relay'
}

/** The gateway answered a RESERVE with a status other than OK. */
export class ReservationRefusedError extends NatmeshError<'RESERVATION_REFUSED'> {
  override name = 'ReservationRefusedError'
  readonly status: Status
  constructor (status: Status) {
    super('RESERVATION_REFUSED', `gateway refused the reservation: ${status} (${REFUSALS[status] ?? 'unexpected answer'})`)
    this.status = status
  }
}

/**
 * TCP starts this long after UDP (RFC 8305's "connection attempt delay") unless the gateway has answered over UDP
 * by then, or at once when UDP has failed
 */
export const TCP_HEAD_START_MS = 250
/** a link's first connection may be one the pool opened this recently (to probe the gateway) */
const FRESH_CONNECTION_MS = 10_000
/** an old TCP link connection is closed once idle; checked this often */
const IDLE_CHECK_MS = 1000

export interface DialGatewayOptions {
  /** one address's limit */
  timeoutMs: number
  /** open a fresh connection even when one is open (which may be a dead one after a restart); else that one is returned */
  force: boolean
  /**
   * When TCP wins the race, the UDP attempt is given its time anyway and a connection it brings goes here (the
   * caller moves over to it). Without it the UDP attempt is abandoned.
   */
  onLateUdp?: (connection: Connection) => void
}

/**
 * Dials a gateway happy-eyeballs style: its UDP overlay addresses at once, its TCP ones TCP_HEAD_START_MS later
 * (or as soon as UDP has failed), one address after another within each, at most `timeoutMs` each. The first
 * connection wins. A gateway that answered over UDP within the head start gets no TCP dial unless the UDP one then
 * fails: on a loaded machine Noise over UDP may finish after 250 ms, and two connections, one closed at once, would
 * leave the gateway relaying over the one being closed. A UDP-blocked network thus costs the head start, not a
 * timeout.
 */
export async function dialGateway (node: Libp2p, dialAddress: DialAddress, gateway: PeerId, addresses: Multiaddr[], options: DialGatewayOptions): Promise<Connection> {
  const open = options.force ? undefined : node.getConnections(gateway).find(conn => conn.status === 'open' && !isRelayed(conn.remoteAddr))
  if (open != null) return open
  const udp = addresses.filter(isUdxMultiaddr)
  const tcp = addresses.filter(ma => !isUdxMultiaddr(ma))
  const errors: string[] = []
  const udpAbort = new AbortController()
  const tcpAbort = new AbortController()
  let udpAnswered = false
  const onProgress = (event: { type: string }): void => { if (event.type === UDX_ANSWERED) udpAnswered = true }
  const inTurn = async (list: Multiaddr[], signal: AbortSignal): Promise<Connection> => {
    for (const address of list) {
      if (signal.aborted) break
      try {
        return await dialAddress(address, { signal: AbortSignal.any([signal, AbortSignal.timeout(options.timeoutMs)]), onProgress })
      } catch (err) {
        errors.push(`${address.toString()}: ${err instanceof Error ? err.message : String(err)}`)
      }
    }
    throw new Error('no address answered')
  }
  const udpAttempt = inTurn(udp, udpAbort.signal)
  const tcpAttempt = (async () => {
    if (udp.length > 0) await headStart(udpAttempt, () => udpAnswered, tcpAbort.signal)
    return inTurn(tcp, tcpAbort.signal)
  })()
  let winner: Connection
  try {
    winner = await Promise.any([udpAttempt, tcpAttempt])
  } catch {
    throw new Error(`could not reach gateway ${gateway.toString()} (${errors.join('; ')})`)
  }
  const loser = isUdxMultiaddr(winner.remoteAddr) ? tcpAttempt : udpAttempt
  const late = isUdxMultiaddr(winner.remoteAddr) ? undefined : options.onLateUdp
  if (late == null) (loser === udpAttempt ? udpAbort : tcpAbort).abort()
  // a losing dial that still connected is closed, unless it is the late UDP connection someone wants
  loser.then(connection => {
    if (connection === winner) return
    if (late != null) late(connection)
    else void connection.close().catch(() => {})
  }, () => {})
  return winner
}

/**
 * Resolves after TCP_HEAD_START_MS unless UDP has answered by then (then only if the UDP attempt fails), earlier
 * once the UDP attempt has failed, or when TCP is no longer wanted.
 */
async function headStart (udpAttempt: Promise<Connection>, udpAnswered: () => boolean, signal: AbortSignal): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(() => { if (!udpAnswered()) resolve() }, TCP_HEAD_START_MS)
    const done = (): void => { clearTimeout(timer); resolve() }
    udpAttempt.catch(done)
    signal.addEventListener('abort', done, { once: true })
  })
}

/** Renew `refreshBeforeExpiryMs` ahead of expiry, or halfway through a reservation shorter than that. */
export function refreshDelay (remainingMs: number, refreshBeforeExpiryMs: number): number {
  return remainingMs > 2 * refreshBeforeExpiryMs ? remainingMs - refreshBeforeExpiryMs : Math.max(remainingMs / 2, 1000)
}
