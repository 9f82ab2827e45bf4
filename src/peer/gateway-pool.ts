import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, Libp2p, Logger, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { dialGateway, GatewayLink } from './gateway-link.js'
import type { GatewayLinkEvent, GatewayLinkInit } from './gateway-link.js'
import { pingOver } from '../core/ping-path.js'
import { isRelayed } from '../core/relay-address.js'

export interface GatewayAddresses { gateway: PeerId, addresses: Multiaddr[] }

/** what the pool reports: its links' events, and changes to which gateways it knows and uses */
export type GatewayPoolEvent =
  | GatewayLinkEvent
  /** a gateway learnt from the DHT (gateways are its servers); it may be chosen when one of ours fails */
  | { event: 'gateway-discovered', gateway: string, addrs: string[] }
  /** a lost gateway was swapped for the healthiest unused ones (`by`; empty when none answered) */
  | { event: 'gateway-replaced', gateway: string, by: string[] }

export interface GatewayPoolInit {
  node: Libp2p
  /** the gateways from config; more are discovered */
  configured: GatewayAddresses[]
  /** reservations are kept on this many gateways at once */
  maxGateways: number
  /** finds more gateways (the DHT's servers); absent when discovery is off */
  discover?: (signal: AbortSignal) => Promise<GatewayAddresses[]>
  discoveryIntervalMs: number
  /** udx's smoothed RTT of a connection over the UDP overlay (0 before its first sample); undefined for others */
  overlayRttMs: (connection: Connection) => number | undefined
  link: Pick<GatewayLinkInit, 'dialTimeoutMs' | 'udpRetryMs' | 'reconnect' | 'refreshBeforeExpiryMs' | 'dialAddress'>
  log: Logger
  emit: (event: GatewayPoolEvent) => void
}

/** a failure within this window counts against a gateway as much as this many ms of RTT */
const FAILURE_WINDOW_MS = 10 * 60_000
const FAILURE_PENALTY_MS = 2000
/**
 * Gateways linked over TCP are pinged this often; after HEALTH_MISSES unanswered pings in a row the connection is
 * closed, which makes its link report the gateway lost. A gateway that dies without closing its connections
 * (power loss, a cut path) is thus noticed within HEALTH_MISSES × (interval + ping timeout) = 30 s. Closing a
 * connection ends the circuits on it, so the bar is high: in the lab, a machine with a load of 25 left single
 * pings unanswered for seconds.
 */
const HEALTH_CHECK_MS = 5000
const HEALTH_PING_TIMEOUT_MS = 5000
const HEALTH_MISSES = 3
/** candidates probed per free slot when choosing gateways */
const PROBE_PER_SLOT = 3
/** while short of gateways, the DHT is asked again this often (the other gateways may not have joined it yet) */
const SHORT_DISCOVERY_MS = 5000
/** one discovery query; a dead gateway in the routing table costs it 5-8 s */
const DISCOVERY_TIMEOUT_MS = 15_000

interface Health {
  addresses: Multiaddr[]
  rttMs?: number
  failures: number[]
  /** unanswered health pings in a row */
  misses: number
}

/**
 * Keeps relay reservations on the `maxGateways` healthiest gateways out of all known ones (configured and
 * discovered): health is the measured RTT plus a penalty per recent failure. A gateway whose link is lost is
 * replaced by the healthiest unused one (its own link keeps retrying only when there is none).
 */
export class GatewayPool {
  private readonly init: GatewayPoolInit
  private readonly known = new Map<string, Health>()
  private readonly active = new Map<string, GatewayLink>()
  /** changes to the active set run one at a time */
  private queue: Promise<void> = Promise.resolve()
  private discoveryTimer?: NodeJS.Timeout
  private healthTimer?: NodeJS.Timeout
  private stopped = true

  constructor (init: GatewayPoolInit) {
    this.init = init
    for (const { gateway, addresses } of init.configured) this.known.set(gateway.toString(), { addresses, failures: [], misses: 0 })
  }

  get links (): GatewayLink[] {
    return [...this.active.values()]
  }

  /** configured or discovered: connections to these are infrastructure, not peers */
  isGateway (peer: PeerId): boolean {
    return this.known.has(peer.toString())
  }

  linkOf (peer: PeerId): GatewayLink | undefined {
    return this.active.get(peer.toString())
  }

  start (): void {
    this.stopped = false
    this.enqueue(async () => { await this.fill() })
    if (this.init.discover != null) this.scheduleDiscovery(1000)
    this.healthTimer = setInterval(() => { void this.checkHealth() }, HEALTH_CHECK_MS)
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.discoveryTimer)
    clearInterval(this.healthTimer)
    for (const link of this.active.values()) link.stop()
    this.active.clear()
  }

  /** Our network changed: every link dials its gateway again at once, over the new path (but for `keep`, made since). */
  networkChanged (keep?: Connection): void {
    for (const link of this.active.values()) link.networkChanged(keep)
  }

  /** the link to `gateway` reported a failure: count it, and move to a healthier gateway if there is one */
  lost (gateway: string): void {
    const health = this.known.get(gateway)
    if (health == null || !this.active.has(gateway)) return
    health.failures.push(Date.now())
    this.enqueue(async () => {
      if (!this.active.has(gateway) || this.unused().length === 0) return
      const link = this.active.get(gateway)
      link?.stop()
      this.active.delete(gateway)
      const replacements = await this.fill()
      this.init.emit({ event: 'gateway-replaced', gateway, by: replacements.map(String) })
      // nothing better answered: keep trying the one we had
      if (replacements.length === 0 && link != null && !this.stopped) this.activate(link.gateway)
    })
  }

  private enqueue (job: () => Promise<void>): void {
    this.queue = this.queue.then(job).catch((err: Error) => { this.init.log.error('gateway pool: %s', err.message) })
  }

  private unused (): string[] {
    return [...this.known.keys()].filter(id => !this.active.has(id))
  }

  /** Starts links on the healthiest unused gateways until `maxGateways` are active; returns the new ones. */
  private async fill (): Promise<PeerId[]> {
    const free = this.init.maxGateways - this.active.size
    if (this.stopped || free <= 0) return []
    // probe a few of the best-looking ones, not every gateway the DHT knows of
    const candidates = this.unused().sort((a, b) => this.score(a) - this.score(b)).slice(0, free * PROBE_PER_SLOT)
    // one gateway and none active (a single-gateway peer's start): it is taken whatever a probe says, and its link's
    // reservation should not wait for a dial and ping first
    const choice = candidates.length > 1 || this.active.size > 0
    if (choice) await Promise.all(candidates.map(async id => { await this.probe(id) }))
    const chosen = candidates
      .filter(id => !this.active.has(id))
      .sort((a, b) => this.score(a) - this.score(b))
      .slice(0, free)
    // unreachable ones too when nothing answers (at start the gateways may not be up yet): their links retry
    const reachable = chosen.filter(id => this.known.get(id)?.rttMs != null)
    const picked = (reachable.length > 0 || this.active.size > 0 ? reachable : chosen).map(id => peerIdFromString(id))
    if (this.stopped) return []
    for (const gateway of picked) this.activate(gateway)
    return picked
  }

  private activate (gateway: PeerId): void {
    const health = this.known.get(gateway.toString())
    if (health == null) return
    const link = new GatewayLink({
      ...this.init.link,
      gateway,
      addresses: health.addresses,
      node: this.init.node,
      log: this.init.log,
      emit: (event) => {
        this.init.emit(event)
        if (event.event === 'gateway-lost' || event.event === 'reservation-refused') this.lost(event.gateway)
      }
    })
    this.active.set(gateway.toString(), link)
    link.start()
  }

  /** RTT of one ping over a (possibly existing) connection; unreachable leaves rttMs unset */
  private async probe (id: string): Promise<void> {
    const health = this.known.get(id)
    if (health == null) return
    try {
      const connection = await dialGateway(this.init.node, this.init.link.dialAddress, peerIdFromString(id), health.addresses, { timeoutMs: this.init.link.dialTimeoutMs, force: false })
      health.rttMs = await pingOver(connection, this.init.link.dialTimeoutMs)
    } catch (err) {
      health.rttMs = undefined
      health.failures.push(Date.now())
      this.init.log('gateway %s did not answer a probe - %s', id, err instanceof Error ? err.message : String(err))
    }
  }

  /**
   * Keeps the active gateways' RTTs current, and closes TCP connections to gateways that stopped answering.
   * Gateways linked over the UDP overlay are not pinged: udx measures their RTT from the traffic and keepalives
   * it acknowledges anyway, and the overlay's liveness watch aborts a connection whose gateway fell silent. A
   * ping stream costs a gateway about 1.4 ms of CPU; at 10,000 peers even one a minute each was a quarter of a core.
   */
  private async checkHealth (): Promise<void> {
    await Promise.all(this.links.map(async link => {
      const connection = link.activeConnection
      const health = this.known.get(link.gateway.toString())
      if (connection?.status !== 'open' || health == null) return
      const overlayRttMs = this.init.overlayRttMs(connection)
      if (overlayRttMs !== undefined) {
        if (overlayRttMs > 0) health.rttMs = overlayRttMs
        return
      }
      try {
        health.rttMs = await pingOver(connection, HEALTH_PING_TIMEOUT_MS)
        health.misses = 0
      } catch {
        if (++health.misses < HEALTH_MISSES || connection.status !== 'open') return
        health.misses = 0
        this.init.log('gateway %p stopped answering pings; dropping its connection', link.gateway)
        connection.abort(new Error('gateway stopped answering pings'))
      }
    }))
  }

  private score (id: string): number {
    const health = this.known.get(id)
    if (health == null) return Infinity
    const since = Date.now() - FAILURE_WINDOW_MS
    health.failures = health.failures.filter(at => at > since)
    return (health.rttMs ?? this.init.link.dialTimeoutMs) + FAILURE_PENALTY_MS * health.failures.length
  }

  private scheduleDiscovery (delayMs: number): void {
    clearTimeout(this.discoveryTimer)
    this.discoveryTimer = setTimeout(() => { void this.discoverOnce() }, delayMs)
  }

  private async discoverOnce (): Promise<void> {
    const discover = this.init.discover
    if (this.stopped || discover == null) return
    try {
      for (const { gateway, addresses } of await discover(AbortSignal.timeout(DISCOVERY_TIMEOUT_MS))) {
        const id = gateway.toString()
        const dialable = addresses.filter(ma => !isRelayed(ma)).map(ma => withPeerId(ma, id))
        if (gateway.equals(this.init.node.peerId) || dialable.length === 0) continue
        const health = this.known.get(id)
        if (health != null) {
          health.addresses = dialable
          continue
        }
        this.known.set(id, { addresses: dialable, failures: [], misses: 0 })
        this.init.emit({ event: 'gateway-discovered', gateway: id, addrs: dialable.map(String) })
      }
      if (this.active.size < this.init.maxGateways) this.enqueue(async () => { await this.fill() })
    } catch (err) {
      this.init.log('gateway discovery failed - %s', err instanceof Error ? err.message : String(err))
    }
    const short = this.active.size < this.init.maxGateways
    if (!this.stopped) this.scheduleDiscovery(short ? Math.min(SHORT_DISCOVERY_MS, this.init.discoveryIntervalMs) : this.init.discoveryIntervalMs)
  }
}

function withPeerId (ma: Multiaddr, id: string): Multiaddr {
  const last = ma.getComponents().at(-1)
  return last?.name === 'p2p' ? ma : multiaddr(`${ma.toString()}/p2p/${id}`)
}
