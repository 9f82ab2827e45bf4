/** One part of a daemon, as its start-up sees it. */
export interface StartablePart {
  start: () => unknown
  stop: () => unknown
}

/**
 * Starts `parts` one after the other. When one fails, the ones already started are stopped, last first (a
 * failing stop does not keep the others from stopping), and the start's error is rethrown: a daemon that could
 * not start leaves no listener, socket or timer behind.
 */
export async function startInOrder (parts: readonly StartablePart[]): Promise<void> {
  const started: StartablePart[] = []
  try {
    for (const part of parts) {
      await part.start()
      started.unshift(part)
    }
  } catch (err) {
    for (const part of started) {
      try {
        await part.stop()
      } catch {
        // the start's error is the one to report; this part has done what it could
      }
    }
    throw err
  }
}
