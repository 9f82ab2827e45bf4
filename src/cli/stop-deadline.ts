import type { Logger } from '../core/logging.js'

/** how long a daemon may take to stop (a peer's station withdrawal alone may take 10 s) before it is made to exit */
export const STOP_TIMEOUT_MS = 30_000
/** how long a stopped daemon may still run (nothing of natmesh's needs it) before it is made to exit */
export const LINGER_TIMEOUT_MS = 5000

export interface StopDeadlines {
  stopMs: number
  lingerMs: number
}

/**
 * What keeps the event loop alive, as Node reports it ("TCPServerWrap ×2, Timeout"). Threads of native addons
 * (node-datachannel's, under WebRTC) hold the process without being listed.
 */
export function openResources (): string {
  const counts = new Map<string, number>()
  for (const name of process.getActiveResourcesInfo()) counts.set(name, (counts.get(name) ?? 0) + 1)
  const listed = [...counts].map(([name, n]) => n > 1 ? `${name} ×${n}` : name).join(', ')
  return listed === '' ? 'nothing Node lists (a native addon\'s thread, such as WebRTC\'s)' : listed
}

/**
 * Runs a daemon's `stop` and makes sure the process then ends: a stop still unfinished after `stopMs` is given
 * up (exit 1), and a process that something keeps alive `lingerMs` after a finished stop exits (with the status its command set, else 0), each time
 * with a log line naming what was still open. A clean stop exits on its own long before.
 */
export async function stopWithin (name: string, logger: Logger, stop: () => Promise<void>, deadlines: StopDeadlines = { stopMs: STOP_TIMEOUT_MS, lingerMs: LINGER_TIMEOUT_MS }): Promise<void> {
  const deadline = setTimeout(() => {
    logger.error(`${name}: still stopping after ${deadlines.stopMs} ms, exiting; still open: ${openResources()}`)
    process.exit(1)
  }, deadlines.stopMs)
  deadline.unref()
  try {
    await stop()
  } finally {
    clearTimeout(deadline)
    // unref'd: it fires only if something else keeps the process running
    setTimeout(() => {
      logger.warn(`${name}: stopped, but still running ${deadlines.lingerMs} ms later, exiting; still open: ${openResources()}`)
      // the status the command chose (a one-shot job that failed says 1), not a blanket 0
      process.exit(process.exitCode ?? 0)
    }, deadlines.lingerMs).unref()
  }
}
