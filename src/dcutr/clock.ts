/**
 * The time a punch sees: `now` for the relay's round trip and the outcome's cost, `wait` for the half round
 * trip before the punch. Tests pass their own to script round trips without sleeping.
 */
export interface Clock {
  now: () => number
  /** resolves after `ms`, or early when `signal` aborts */
  wait: (ms: number, signal: AbortSignal) => Promise<void>
}

export const systemClock: Clock = {
  now: () => Date.now(),
  wait: async (ms, signal) => {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms)
      signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
    })
  }
}
