import type { Logger, Startable } from '@libp2p/interface'
import type { IceServer } from '../../ice-servers/types.js'
import { probeTurnAllocation } from './allocate.js'
import type { TurnEndpoint } from './allocate.js'

export interface TurnHealthMonitorInit {
  /** the ICE servers to watch, read before every round so refreshed credentials are used; entries without a turn: URL are ignored */
  servers: () => IceServer[]
  log: Logger
  /** between checks of one server; default 60 s */
  intervalMs?: number
  /** consecutive failed checks that make a server unhealthy; default 3 */
  failureThreshold?: number
  /** how long an unhealthy server is left alone before it is checked again; default 5 min */
  unhealthyForMs?: number
  /** first retransmission timeout of each STUN request in a check (it doubles); default 500 ms */
  rtoMs?: number
  /** retransmissions per STUN request; default 2 (a dead server costs 0.5 + 1 + 2 = 3.5 s) */
  retransmissions?: number
}

const DEFAULTS = {
  intervalMs: 60_000,
  failureThreshold: 3,
  unhealthyForMs: 5 * 60_000,
  rtoMs: 500,
  retransmissions: 2
}

export interface TurnServerHealth {
  /** host:port, the key a server is tracked by */
  address: string
  healthy: boolean
  /** undefined until the first check */
  checkedAt?: number
  consecutiveFailures: number
  /** of the last successful allocation */
  latencyMs?: number
  /** while unhealthy: when it is checked again */
  unhealthyUntil?: number
  lastError?: string
}

interface TurnTarget { address: string, endpoint: TurnEndpoint }

/**
 * Watches TURN servers with the real thing: every `intervalMs` each one gets an authenticated Allocate (released
 * at once). `failureThreshold` failures in a row mark a server unhealthy for `unhealthyForMs`; after that it is
 * checked again, and one success makes it healthy. `ordered()` puts healthy servers first, fastest first.
 */
export class TurnHealthMonitor implements Startable {
  private readonly init: Required<TurnHealthMonitorInit>
  private readonly states = new Map<string, TurnServerHealth>()
  private readonly inFlight = new Set<string>()
  private timer?: NodeJS.Timeout
  private running = false

  constructor (init: TurnHealthMonitorInit) {
    this.init = { ...DEFAULTS, ...init }
  }

  async start (): Promise<void> {
    this.running = true
    this.schedule(0)
  }

  async stop (): Promise<void> {
    this.running = false
    clearTimeout(this.timer)
  }

  /** the state of every TURN server currently listed */
  health (): TurnServerHealth[] {
    return [...this.states.values()].map(state => ({ ...state }))
  }

  /**
   * The servers in order of preference: entries that are not TURN keep their order and come first, then TURN
   * servers that are healthy (lowest latency first), not yet checked, and unhealthy last — kept rather than
   * dropped, as a last resort when every server failed its checks.
   */
  ordered (servers: IceServer[] = this.init.servers()): IceServer[] {
    const rank = (server: IceServer): [number, number] => {
      const address = turnTargetOf(server)?.address
      if (address == null) return [0, 0]
      const state = this.states.get(address)
      if (state?.checkedAt == null) return [2, 0]
      return state.healthy ? [1, state.latencyMs ?? Infinity] : [3, 0]
    }
    return servers
      .map((server, index) => ({ server, index, rank: rank(server) }))
      .sort((a, b) => a.rank[0] - b.rank[0] || a.rank[1] - b.rank[1] || a.index - b.index)
      .map(({ server }) => server)
  }

  /** checks every listed server that is due (all of them, unless unhealthy and still benched) and waits for the results */
  async checkNow (): Promise<void> {
    const targets = this.init.servers().flatMap(server => turnTargetOf(server) ?? [])
    const listed = new Set(targets.map(target => target.address))
    for (const address of this.states.keys()) {
      if (!listed.has(address)) this.states.delete(address)
    }

    const now = Date.now()
    await Promise.all(targets
      .filter(target => !this.inFlight.has(target.address) && (this.states.get(target.address)?.unhealthyUntil ?? 0) <= now)
      .map(async target => { await this.check(target) }))
  }

  private schedule (delayMs: number): void {
    this.timer = setTimeout(() => {
      void this.checkNow().finally(() => { if (this.running) this.schedule(this.init.intervalMs) })
    }, delayMs)
  }

  private async check ({ address, endpoint }: TurnTarget): Promise<void> {
    this.inFlight.add(address)
    const state: TurnServerHealth = this.states.get(address) ?? { address, healthy: true, consecutiveFailures: 0 }
    try {
      const { latencyMs } = await probeTurnAllocation(endpoint, { rtoMs: this.init.rtoMs, retransmissions: this.init.retransmissions })
      if (!state.healthy) this.init.log('TURN server %s healthy again (%d ms)', address, Math.round(latencyMs))
      Object.assign(state, { healthy: true, consecutiveFailures: 0, latencyMs, unhealthyUntil: undefined, lastError: undefined })
    } catch (err: any) {
      state.consecutiveFailures++
      state.lastError = err.message
      if (state.consecutiveFailures >= this.init.failureThreshold) {
        if (state.healthy) this.init.log.error('TURN server %s unhealthy after %d failed allocations: %s', address, state.consecutiveFailures, err.message)
        state.healthy = false
        state.unhealthyUntil = Date.now() + this.init.unhealthyForMs
      }
    } finally {
      state.checkedAt = Date.now()
      this.inFlight.delete(address)
    }
    this.states.set(address, state)
  }
}

/** host and port of the server's UDP TURN URL (what a check allocates over), with its credential */
function turnTargetOf (server: IceServer): TurnTarget | undefined {
  if (server.username == null || server.credential == null) return undefined
  for (const url of server.urls) {
    const match = /^turn:(\[[^\]]+\]|[^:?[\]]+)(?::(\d+))?(?:\?transport=udp)?$/.exec(url)
    if (match?.[1] == null) continue
    const host = match[1].replace(/^\[|\]$/g, '')
    const port = Number(match[2] ?? 3478)
    return { address: `${match[1]}:${port}`, endpoint: { host, port, username: server.username, credential: server.credential } }
  }
  return undefined
}
