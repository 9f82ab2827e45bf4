import type { Startable } from '@libp2p/interface'
import type { NatReport, StunServerAddress } from './types.js'

export interface NatDetectorInit {
  /** read at each detection, so servers learnt later (a new gateway) count */
  servers: () => StunServerAddress[]
  /** how long a report stays fresh (default 5 min) */
  cacheMs?: number
  /** per test (default: detectNat's) */
  timeoutMs?: number
  /** every new report, including the first one */
  onReport?: (report: NatReport) => void
  /** detection failed for a reason other than the network (a bug or no servers); the peer keeps running */
  onError?: (err: Error) => void
}

export const DEFAULT_NAT_CACHE_MS = 5 * 60_000

/**
 * Runs NAT detection in the background when started and again whenever a report is asked for after the cache
 * expired; concurrent callers share one run. Start-up never waits for it and nothing it meets stops the peer.
 */
export class NatDetector implements Startable {
  private readonly init: NatDetectorInit
  private readonly cacheMs: number
  private report?: NatReport
  private reportAt = 0
  private running?: Promise<NatReport | undefined>
  /** bumped by invalidate(): a run that began before it measured a network in flux, and its report is dropped */
  private generation = 0
  private started = false
  private abort = new AbortController()

  constructor (init: NatDetectorInit) {
    this.init = init
    this.cacheMs = init.cacheMs ?? DEFAULT_NAT_CACHE_MS
  }

  start (): void {
    this.started = true
    this.abort = new AbortController()
    void this.detect()
  }

  /** ends a detection under way at once, so a stopping peer leaves no sockets or timers behind */
  stop (): void {
    this.started = false
    this.abort.abort()
  }

  /** The network changed: the report describes where we were. It is dropped and a new detection started. */
  invalidate (): void {
    this.generation++
    this.report = undefined
    this.running = undefined
    void this.detect({ force: true })
  }

  /** the last report, fresh or not; undefined until the first detection finished */
  current (): NatReport | undefined {
    return this.report
  }

  /** The cached report while fresh, else a new detection; undefined when detection could not run. Stopped: the cache */
  async detect (options: { force?: boolean } = {}): Promise<NatReport | undefined> {
    if (!this.started) return this.report
    if (options.force !== true && this.report != null && performance.now() - this.reportAt < this.cacheMs) return this.report
    const run = this.running ?? this.run(this.generation).finally(() => { if (this.running === run) this.running = undefined })
    this.running = run
    return run
  }

  private async run (generation: number): Promise<NatReport | undefined> {
    try {
      // the STUN stack loads with the first detection, after the first gateway answered (see NatmeshPeer.start)
      const { detectNat } = await import('./detect.js')
      const report = await detectNat({
        servers: this.init.servers(),
        signal: this.abort.signal,
        ...(this.init.timeoutMs != null ? { timeoutMs: this.init.timeoutMs } : {})
      })
      if (!this.started || generation !== this.generation) return report
      this.report = report
      this.reportAt = performance.now()
      this.init.onReport?.(report)
      return report
    } catch (err) {
      this.init.onError?.(err instanceof Error ? err : new Error(String(err)))
      return undefined
    }
  }
}
