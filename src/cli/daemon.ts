import type { Logger } from '../core/logging.js'
import { stopWithin } from './stop-deadline.js'

type StopSignal = 'SIGINT' | 'SIGTERM' | 'SIGHUP'
/** signal undefined: the daemon's job is done */
type StopHandler = (signal: StopSignal | undefined, from: 'signal' | 'request') => void

/** the running daemon's stop handler; commands that are no daemon stop the default way */
let daemonStop: StopHandler | undefined

/**
 * bin/natmesh.js, run by a Node older than 22, starts this CLI as its child and passes on the signals it gets as
 * IPC messages. A message is only a request to stop, never a second signal: under systemd's
 * KillMode=control-group, `timeout` or Ctrl-C the same signal reaches this process directly as well.
 */
export function acceptLauncherStops (): void {
  if (process.send == null) return
  process.on('message', (message: unknown) => {
    const signal = (message as { natmeshStop?: unknown } | null)?.natmeshStop
    if (signal !== 'SIGINT' && signal !== 'SIGTERM' && signal !== 'SIGHUP') return
    if (daemonStop != null && signal !== 'SIGHUP') daemonStop(signal, 'request')
    else process.kill(process.pid, signal)
  })
  // the channel must not keep a finished command alive (a 'message' listener refs it, so unref after adding one)
  process.channel?.unref()
}

/**
 * Keeps a daemon up through stray errors (a malformed packet must never take it down) and stops it cleanly on
 * SIGINT/SIGTERM, or once `until` settles (a one-shot job). A second signal delivered to this process (Ctrl-C
 * twice) exits at once. Resolves once the daemon is stopped: true when it stopped without an error. The stop has a deadline (see stopWithin).
 */
export async function runUntilSignal (name: string, logger: Logger, stop: () => Promise<void>, until?: Promise<unknown>): Promise<boolean> {
  process.on('unhandledRejection', (err) => { logger.error({ err }, `${name}: unhandled rejection (kept running)`) })
  process.on('uncaughtException', (err) => { logger.error({ err }, `${name}: uncaught exception (kept running)`) })
  return new Promise<boolean>((resolve) => {
    let stopping = false
    let signalled = false
    daemonStop = (signal, from) => {
      if (from === 'signal') {
        if (signalled) {
          logger.warn(`${name}: second ${signal}, exiting now`)
          process.exit(130)
        }
        signalled = true
      }
      if (stopping) return
      stopping = true
      logger.info(`${name}: ${signal ?? 'done'}${signal != null ? ' received' : ''}, stopping`)
      stopWithin(name, logger, stop).then(() => { resolve(true) }, (err) => {
        logger.error({ err }, `${name}: error while stopping`)
        resolve(false)
      })
    }
    void until?.finally(() => { daemonStop?.(undefined, 'request') })
    const onSignal = (signal: NodeJS.Signals): void => { daemonStop?.(signal as StopSignal, 'signal') }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
}
