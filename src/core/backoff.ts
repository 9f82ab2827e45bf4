export interface BackoffInit {
  /** the first delay */
  initialMs: number
  /** no delay is longer */
  maxMs: number
  /** how much longer each delay is than the one before; default 2 */
  factor?: number
  /**
   * draw each delay uniformly from its upper half ("equal jitter"), so that the many clients of one restarted
   * server do not all come back in the same instant; default off
   */
  jitter?: boolean
  /** [0, 1): injected by tests to make jitter reproducible */
  random?: () => number
}

/**
 * Exponential backoff for retries that run on a timer, the one rule natmesh retries by:
 *
 * 1. The n-th delay since the last reset (n = 0, 1, 2, ...) is min(initialMs * factor^n, maxMs), factor 2 unless set.
 * 2. With jitter, it is drawn from [d / 2, d] instead and rounded to a whole ms.
 * 3. `reset()` (after a success, or a run long enough to count as one) starts over at n = 0.
 *
 * It only computes delays: the caller owns the timer, and can report the delay (a `retryInMs`) before it waits,
 * which promise-wrapping retry libraries (p-retry, exponential-backoff) do not let it do.
 */
export class Backoff {
  private failures = 0
  private readonly init: BackoffInit

  constructor (init: BackoffInit) {
    this.init = init
  }

  /** the delay before the next attempt; the one after it is `factor` times longer, up to the maximum (rule 1) */
  next (): number {
    const delay = Math.min(this.init.initialMs * (this.init.factor ?? 2) ** this.failures, this.init.maxMs)
    this.failures++
    if (this.init.jitter !== true) return delay
    const random = this.init.random ?? Math.random
    return Math.round(delay / 2 + random() * delay / 2)
  }

  reset (): void {
    this.failures = 0
  }
}
