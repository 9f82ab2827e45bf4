import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import type { ChildProcess } from 'node:child_process'
import type { Startable } from '@libp2p/interface'
import { Backoff } from '../../core/backoff.js'
import type { Logger } from '../../core/logging.js'
import { answersStunBinding } from '../../stun/client.js'
import { logCoturnLine } from './coturn-log.js'

/** coturn cannot run here: the binary is missing, or it never came up */
export class TurnUnavailableError extends Error {
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'TurnUnavailableError'
  }
}

export interface TurnSupervisorInit {
  binary: string
  configFile: string
  /** where coturn answers, for the readiness check (a STUN Binding) */
  probe: { host: string, port: number }
  restartDelayMs: { initial: number, max: number }
  logger: Logger
  /** how long a start may take before it counts as failed; default 10 s */
  startTimeoutMs?: number
  /** SIGTERM, then SIGKILL after this long; default 3 s */
  stopTimeoutMs?: number
}

/** a run this long proves the config works: the next restart starts from the initial delay again */
const STABLE_RUN_MS = 60_000
const PROBE_INTERVAL_MS = 100

/**
 * Runs coturn as a child process: starts it and waits until it answers STUN, logs its output, restarts it with
 * exponential backoff whenever it exits, and stops it (SIGTERM, then SIGKILL) with the gateway.
 */
export class TurnSupervisor implements Startable {
  private readonly init: Required<TurnSupervisorInit>
  private child?: ChildProcess
  private stopping = false
  private restartTimer?: NodeJS.Timeout
  private readonly restartBackoff: Backoff
  private startedAt = 0
  /** how often coturn had to be restarted */
  restarts = 0

  constructor (init: TurnSupervisorInit) {
    this.init = { startTimeoutMs: 10_000, stopTimeoutMs: 3000, ...init }
    this.restartBackoff = new Backoff({ initialMs: init.restartDelayMs.initial, maxMs: init.restartDelayMs.max })
  }

  /** the running coturn's process id */
  get pid (): number | undefined {
    return this.child?.exitCode == null && this.child?.signalCode == null ? this.child?.pid : undefined
  }

  /** @throws {TurnUnavailableError} when coturn cannot be started or does not answer in time */
  async start (): Promise<void> {
    this.stopping = false
    const child = await this.spawnCoturn()

    if (!await this.answers(AbortSignal.timeout(this.init.startTimeoutMs))) {
      const { host, port } = this.init.probe
      const reason = child.exitCode != null || child.signalCode != null
        ? `coturn exited during start-up (${describeExit(child.exitCode, child.signalCode)})`
        : `coturn did not answer on ${host}:${port} within ${this.init.startTimeoutMs} ms`
      await this.stop()
      throw new TurnUnavailableError(`${reason}; see the coturn log lines above`)
    }
  }

  async stop (): Promise<void> {
    this.stopping = true
    clearTimeout(this.restartTimer)
    const child = this.child
    if (child == null || child.exitCode != null || child.signalCode != null) return

    const exited = once(child, 'exit')
    child.kill('SIGTERM')
    const killTimer = setTimeout(() => { child.kill('SIGKILL') }, this.init.stopTimeoutMs)
    await exited
    clearTimeout(killTimer)
  }

  private async spawnCoturn (): Promise<ChildProcess> {
    const child = spawn(this.init.binary, ['-c', this.init.configFile], { stdio: ['ignore', 'pipe', 'pipe'] })
    this.child = child

    for (const output of [child.stdout, child.stderr]) {
      createInterface({ input: output }).on('line', (line) => { logCoturnLine(this.init.logger, line) })
    }

    // 'spawn' or 'error' comes first: a missing binary is an error event, not an exception
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve)
      child.once('error', (err: NodeJS.ErrnoException) => {
        reject(new TurnUnavailableError(err.code === 'ENOENT'
          ? `coturn binary "${this.init.binary}" not found: install the coturn package (apt-get install coturn) or set turn.binary`
          : `cannot start coturn ("${this.init.binary}"): ${err.message}`, { cause: err }))
      })
    })

    this.startedAt = Date.now()
    this.init.logger.info({ pid: child.pid }, 'coturn started')
    child.once('exit', (code, signal) => { this.onExit(child, code, signal) })
    return child
  }

  private onExit (child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.stopping || child !== this.child) {
      this.init.logger.info('coturn stopped')
      return
    }

    if (Date.now() - this.startedAt >= STABLE_RUN_MS) {
      this.restartBackoff.reset()
    }
    const delay = this.restartBackoff.next()
    this.init.logger.warn({ pid: child.pid, delayMs: delay }, `coturn exited (${describeExit(code, signal)}); restarting`)
    this.restartTimer = setTimeout(() => { void this.restart() }, delay)
  }

  private async restart (): Promise<void> {
    if (this.stopping) return
    this.restarts++
    try {
      await this.spawnCoturn()
    } catch (err) {
      // no child, so no exit event to restart from: schedule the next attempt here
      const delay = this.restartBackoff.next()
      this.init.logger.error({ err, delayMs: delay }, 'coturn restart failed; trying again')
      this.restartTimer = setTimeout(() => { void this.restart() }, delay)
      return
    }

    if (await this.answers(AbortSignal.timeout(this.init.startTimeoutMs))) {
      this.init.logger.info({ pid: this.pid, restarts: this.restarts }, 'coturn answering again')
    } else if (this.pid != null) {
      // an exited child was rescheduled by onExit; a running one retries a busy port by itself
      this.init.logger.error(`coturn restarted but does not answer on ${this.init.probe.host}:${this.init.probe.port}`)
    }
  }

  /** polls with STUN Bindings until coturn answers (true), or it exits, stops or the signal fires (false) */
  private async answers (signal: AbortSignal): Promise<boolean> {
    const { host, port } = this.init.probe
    while (!signal.aborted && !this.stopping && this.pid != null) {
      if (await answersStunBinding(host, port, { rtoMs: PROBE_INTERVAL_MS, retransmissions: 0, signal })) return true
    }
    return false
  }
}

function describeExit (code: number | null, signal: NodeJS.Signals | null): string {
  return signal != null ? `signal ${signal}` : `exit code ${code}`
}
