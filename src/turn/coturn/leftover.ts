import { readFile } from 'node:fs/promises'
import type { Logger } from '../../core/logging.js'

const GRACE_MS = 3000

/**
 * Stops a coturn an earlier gateway run left behind (that gateway was killed before it could stop it): it would
 * hold the port, answer the readiness check in place of the new one, and run unsupervised. Only a process that
 * runs turnserver on this very config file is touched; the pid file alone proves nothing (pids are reused).
 */
export async function stopLeftoverCoturn (pidFile: string, configFile: string, logger: Logger): Promise<void> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim())
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return

  const args = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => '')).split('\0')
  if (!args.includes(configFile)) return

  logger.warn({ pid }, 'stopping a coturn left running by an earlier gateway run')
  process.kill(pid, 'SIGTERM')
  const deadline = Date.now() + GRACE_MS
  while (isRunning(pid)) {
    if (Date.now() > deadline) {
      process.kill(pid, 'SIGKILL')
      break
    }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

function isRunning (pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
