/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T> (check: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs = 5000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const value = await check()
    if (value !== undefined && value !== false) return value
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise(resolve => setTimeout(resolve, 20))
  }
}

/**
 * Resolves with `check()`'s first value other than undefined/false, checked now and after every `type` event
 * `target` dispatches (no polling); fails after `timeoutMs`. For state that changes only when an event says so.
 */
export async function untilEvent<T> (target: EventTarget, type: string, check: () => T | undefined | false, timeoutMs = 5000, what = 'condition'): Promise<T> {
  return new Promise((resolve, reject) => {
    const done = (): void => { clearTimeout(timer); target.removeEventListener(type, onEvent) }
    const onEvent = (): void => {
      const value = check()
      if (value !== undefined && value !== false) { done(); resolve(value) }
    }
    const timer = setTimeout(() => { done(); reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)) }, timeoutMs)
    target.addEventListener(type, onEvent)
    onEvent()
  })
}
