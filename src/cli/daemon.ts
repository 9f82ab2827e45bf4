import type { Logger } from '../logging.js'
import { stopWithin } from './stop-deadline.js'

/**
 * Keeps a daemon up through stray errors (a malformed packet must never take it down) and stops it cleanly on
 * SIGINT/SIGTERM, within a deadline (see stopWithin). Resolves once the daemon is stopped.
 */
export async function runUntilSignal (name: string, logger: Logger, stop: () => Promise<void>): Promise<void> {
  process.on('unhandledRejection', (err) => { logger.error({ err }, `${name}: unhandled rejection (kept running)`) })
  process.on('uncaughtException', (err) => { logger.error({ err }, `${name}: uncaught exception (kept running)`) })
  await new Promise<void>((resolve) => {
    let stopping = false
    const onSignal = (signal: NodeJS.Signals): void => {
      if (stopping) {
        logger.warn(`${name}: second ${signal}, exiting now`)
        process.exit(130)
      }
      stopping = true
      logger.info(`${name}: ${signal} received, stopping`)
      stopWithin(name, logger, stop).then(resolve, (err) => {
        logger.error({ err }, `${name}: error while stopping`)
        resolve()
      })
    }
    process.on('SIGINT', onSignal)
    process.on('SIGTERM', onSignal)
  })
}
