import type { Logger, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { IceServer, IceServersResponse } from './types.js'
import { Backoff } from '../core/backoff.js'

export type { IceServer, IceServersResponse }

export type CandidateSource = 'own-stun' | 'public-stun' | 'own-turn' | 'public-turn'

/** one usable server URL, classified by who runs it */
export interface RankedServer {
  url: string
  source: CandidateSource
  username?: string
  credential?: string
  /** which gateway handed it out; none for servers from the peer's own config */
  gateway?: string
}

export interface IceServerPoolInit {
  /** asks one gateway for its ICE servers; none: only `staticServers` are used */
  fetch?: (gateway: PeerId, signal: AbortSignal) => Promise<IceServersResponse>
  /** the peer's configured servers (public fallbacks), used after every gateway's own */
  staticServers: IceServer[]
  /** the gateway's known addresses: a server on one of their hosts is the gateway's own, any other is public */
  gatewayAddresses: (gateway: PeerId) => Multiaddr[]
  /** what the TURN health monitor knows of a server (`host:port`): healthy ones first, the fastest first */
  turnHealth?: (address: string) => { healthy?: boolean, latencyMs?: number } | undefined
  log: Logger
}

/** refresh this share of the way through the credentials' lifetime, so they never expire in use */
const REFRESH_AT = 0.8
/** a gateway that did not answer is asked again after 2 s, then twice as long each time up to a minute */
const REFETCH_BACKOFF = { initialMs: 2000, maxMs: 60_000 }
const FETCH_TIMEOUT_MS = 10_000
/** libjuice (node-datachannel's ICE agent) uses one STUN server and at most two TURN servers per connection */
const MAX_TURN = 2

interface GatewayServers {
  servers: RankedServer[]
  expiresAt: number
  timer?: NodeJS.Timeout
  /** delays between failed fetches */
  retry: Backoff
}

/**
 * The ICE servers each gateway hands out, fetched when the gateway is reached and refreshed before their
 * credentials expire, and the configuration one ICE attempt gets from them. libjuice picks ONE STUN server at
 * random from what it is given and shuffles TURN servers, so the preference order (own-gateway srflx > public
 * srflx > own TURN relay > public TURN) is enforced by selection, not by order: the best STUN server alone, and
 * own TURN servers unless there are none.
 */
export class IceServerPool {
  private readonly init: IceServerPoolInit
  private readonly gateways = new Map<string, GatewayServers>()
  private readonly staticServers: RankedServer[]
  private stopped = false

  constructor (init: IceServerPoolInit) {
    this.init = init
    this.staticServers = init.staticServers.flatMap(server => rank(server, () => false))
  }

  /** fetches `gateway`'s servers now and keeps them refreshed from then on (a gateway already watched is left be) */
  watch (gateway: PeerId): void {
    if (this.init.fetch == null || this.stopped || this.gateways.has(gateway.toString())) return
    const entry: GatewayServers = { servers: [], expiresAt: 0, retry: new Backoff(REFETCH_BACKOFF) }
    this.gateways.set(gateway.toString(), entry)
    void this.refresh(gateway, entry)
  }

  stop (): void {
    this.stopped = true
    for (const entry of this.gateways.values()) clearTimeout(entry.timer)
  }

  /** every usable server, best first */
  ranked (): RankedServer[] {
    const now = Date.now()
    const fromGateways = [...this.gateways.values()].filter(g => g.expiresAt > now).flatMap(g => g.servers)
    const all = [...fromGateways, ...this.staticServers]
    const order: CandidateSource[] = ['own-stun', 'public-stun', 'own-turn', 'public-turn']
    const stun = order.slice(0, 2).flatMap(source => all.filter(s => s.source === source))
    const turn = order.slice(2).flatMap(source => all.filter(s => s.source === source))
    return [...stun, ...this.byHealth(turn)]
  }

  /** TURN servers healthy first (then not yet checked, then unhealthy as a last resort), own before public, fastest first */
  private byHealth (turn: RankedServer[]): RankedServer[] {
    const health = this.init.turnHealth
    if (health == null) return turn
    const key = (server: RankedServer): number[] => {
      const state = health(turnAddress(server.url))
      const own = server.source === 'own-turn' ? 0 : 1
      if (state?.healthy == null) return [1, own, 0]
      return state.healthy ? [0, own, state.latencyMs ?? Infinity] : [2, own, 0]
    }
    const compare = (a: number[], b: number[]): number => a.map((v, i) => v - (b[i] ?? 0)).find(d => d !== 0) ?? 0
    return turn
      .map((server, index) => ({ server, key: [...key(server), index] }))
      .sort((a, b) => compare(a.key, b.key))
      .map(({ server }) => server)
  }

  hasTurn (): boolean {
    return this.ranked().some(s => s.source.endsWith('-turn'))
  }

  /** The servers for one ICE attempt: the best STUN server, and up to two TURN servers of the best kind. */
  select (policy: { stun: boolean, turn: boolean }): RankedServer[] {
    const ranked = this.ranked()
    const stun = policy.stun ? ranked.filter(s => s.source.endsWith('-stun')).slice(0, 1) : []
    const turnServers = ranked.filter(s => s.source.endsWith('-turn'))
    const bestKind = turnServers[0]?.source
    const turn = policy.turn ? turnServers.filter(s => s.source === bestKind).slice(0, MAX_TURN) : []
    return [...stun, ...turn]
  }

  private async refresh (gateway: PeerId, entry: GatewayServers): Promise<void> {
    entry.timer = undefined
    const fetch = this.init.fetch
    if (fetch == null || this.stopped) return
    let delayMs: number
    try {
      const response = await fetch(gateway, AbortSignal.timeout(FETCH_TIMEOUT_MS))
      if (!(response.ttl > 0)) throw new Error(`gateway sent a ttl of ${response.ttl}`)
      const hosts = new Set(this.init.gatewayAddresses(gateway).flatMap(ma => ma.getComponents().filter(c => c.name === 'ip4' || c.name === 'ip6' || c.name.startsWith('dns')).map(c => c.value)))
      entry.servers = response.iceServers
        .flatMap(server => rank(server, host => hosts.has(host)))
        .map(server => ({ ...server, gateway: gateway.toString() }))
      entry.expiresAt = Date.now() + response.ttl * 1000
      entry.retry.reset()
      delayMs = response.ttl * 1000 * REFRESH_AT
      this.init.log('gateway %p gave %d ICE servers for %d s', gateway, entry.servers.length, response.ttl)
    } catch (err) {
      delayMs = entry.retry.next()
      this.init.log('no ICE servers from gateway %p - %s; retrying in %d ms', gateway, err instanceof Error ? err.message : String(err), delayMs)
    }
    if (!this.stopped) entry.timer = setTimeout(() => { void this.refresh(gateway, entry) }, delayMs)
  }
}

/** `stun:host[:port]` / `turn:host[:port][?transport=udp]`; the host without IPv6 brackets */
export function parseIceUrl (url: string): { scheme: 'stun' | 'stuns' | 'turn' | 'turns', host: string, port?: number, transport?: string } | undefined {
  const match = /^(stuns?|turns?):(\[[0-9a-fA-F:.]+\]|[^:?/@[\]]+)(?::(\d{1,5}))?(?:\?transport=(udp|tcp))?$/.exec(url)
  if (match == null) return undefined
  const port = match[3] == null ? undefined : Number(match[3])
  if (port != null && (port < 1 || port > 65535)) return undefined
  return { scheme: match[1] as 'stun' | 'turn', host: (match[2] ?? '').replace(/^\[|\]$/g, ''), port, transport: match[4] }
}

/** `host:port` of a TURN URL, as the TURN health monitor names servers */
function turnAddress (url: string): string {
  const parsed = parseIceUrl(url)
  if (parsed == null) return url
  return `${parsed.host.includes(':') ? `[${parsed.host}]` : parsed.host}:${parsed.port ?? 3478}`
}

/**
 * Splits one RTCIceServer into the URLs libjuice can use (STUN and TURN over UDP; it has no TCP or TLS), each
 * classified by whether `isOwn(host)`.
 */
function rank (server: IceServer, isOwn: (host: string) => boolean): RankedServer[] {
  return server.urls.flatMap((url): RankedServer[] => {
    const parsed = parseIceUrl(url)
    if (parsed == null) return []
    const own = isOwn(parsed.host)
    if (parsed.scheme === 'stun') return [{ url, source: own ? 'own-stun' : 'public-stun' }]
    if (parsed.scheme !== 'turn' || parsed.transport === 'tcp' || server.username == null || server.credential == null) return []
    return [{ url, source: own ? 'own-turn' : 'public-turn', username: server.username, credential: server.credential }]
  })
}

/**
 * The RTCConfiguration node-datachannel gets for `servers`. Its polyfill writes TURN credentials into the URL
 * (`turn:user:pass@host`), and a natmesh username (`expiry:peerId`) has a colon, so both are percent-encoded
 * (libdatachannel decodes them).
 */
export function rtcConfiguration (servers: RankedServer[], relayOnly: boolean): { iceServers: IceServer[], iceTransportPolicy: 'all' | 'relay' } {
  return {
    iceServers: servers.map(s => s.username == null || s.credential == null
      ? { urls: [s.url] }
      : { urls: [s.url], username: encodeURIComponent(s.username), credential: encodeURIComponent(s.credential) }),
    iceTransportPolicy: relayOnly ? 'relay' : 'all'
  }
}
