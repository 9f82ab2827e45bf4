import { mkdir, readFile, rename, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { z } from 'zod'
import { STRATEGIES } from './strategy.js'
import type { Strategy } from './strategy.js'

/** ICE attempt strategies; `relay` never runs ICE, so it has no timeout to learn */
export type IceStrategy = Exclude<Strategy, 'relay'>
const ICE_STRATEGIES = STRATEGIES.filter((s): s is IceStrategy => s !== 'relay')

export const MIN_TIMEOUT_MS = 3000
export const MAX_TIMEOUT_MS = 30_000
/** after a success the next attempt gets less time (x0.9), after a failure more (x1.2), within the clamp */
export const SUCCESS_FACTOR = 0.9
export const FAILURE_FACTOR = 1.2

/**
 * Where each strategy starts before it has any history: a cone-to-cone attempt may need a while on a slow
 * path (15 s); the TURN strategies connect in a few round trips once the allocation is there (10 s).
 */
export const INITIAL_TIMEOUT_MS: Record<IceStrategy, number> = { direct: 15_000, 'turn-fallback': 10_000, 'turn-only': 10_000 }

export interface StrategyRecord {
  timeoutMs: number
  successes: number
  failures: number
  /** ms since the epoch */
  lastSuccessAt?: number
  lastFailureAt?: number
}

const count = z.number().int().nonnegative()
const recordSchema = z.object({
  timeoutMs: z.number().finite(),
  successes: count,
  failures: count,
  lastSuccessAt: z.number().optional(),
  lastFailureAt: z.number().optional()
})
const fileSchema = z.object({
  version: z.literal(1),
  strategies: z.partialRecord(z.enum(ICE_STRATEGIES), recordSchema)
})

export interface StrategyHistoryInit {
  /** JSON file the history survives restarts in; none: kept in memory only */
  file?: string
  /** told about a history file that could not be read (it is then started afresh) */
  warn: (message: string) => void
}

export function clampTimeout (ms: number): number {
  return Math.min(MAX_TIMEOUT_MS, Math.max(MIN_TIMEOUT_MS, Math.round(ms)))
}

/**
 * Success history and adaptive timeout per strategy, persisted so a restarted peer does not relearn them. The
 * file is replaced atomically (written beside it, then renamed), so a crash mid-write leaves the old one; a
 * corrupt or foreign file is reported once and replaced by fresh history on the next save.
 */
export class StrategyHistory {
  private readonly init: StrategyHistoryInit
  private readonly records = new Map<IceStrategy, StrategyRecord>()
  /** saves run one after another: two renames racing could leave the older content in place */
  private saving: Promise<void> = Promise.resolve()

  constructor (init: StrategyHistoryInit) {
    this.init = init
  }

  async load (): Promise<void> {
    if (this.init.file == null) return
    let text: string
    try {
      text = await readFile(this.init.file, 'utf8')
    } catch (err: any) {
      if (err.code !== 'ENOENT') this.init.warn(`cannot read ICE strategy history ${this.init.file} (${String(err.message)}); starting afresh`)
      return
    }
    let parsed
    try {
      parsed = fileSchema.safeParse(JSON.parse(text))
    } catch (err: any) {
      this.init.warn(`ICE strategy history ${this.init.file} is not JSON (${String(err.message)}); starting afresh`)
      return
    }
    if (!parsed.success) {
      this.init.warn(`ICE strategy history ${this.init.file} is malformed (${parsed.error.issues[0]?.message ?? 'invalid'}); starting afresh`)
      return
    }
    for (const [strategy, record] of Object.entries(parsed.data.strategies) as Array<[IceStrategy, StrategyRecord]>) {
      this.records.set(strategy, { ...record, timeoutMs: clampTimeout(record.timeoutMs) })
    }
  }

  /** how long the next attempt of `strategy` may take */
  timeoutMs (strategy: IceStrategy): number {
    return this.get(strategy).timeoutMs
  }

  get (strategy: IceStrategy): StrategyRecord {
    return { ...(this.records.get(strategy) ?? { timeoutMs: INITIAL_TIMEOUT_MS[strategy], successes: 0, failures: 0 }) }
  }

  all (): Record<IceStrategy, StrategyRecord> {
    return Object.fromEntries(ICE_STRATEGIES.map(s => [s, this.get(s)])) as Record<IceStrategy, StrategyRecord>
  }

  /** records an attempt's outcome, adapts the strategy's timeout and saves; resolves once saved */
  async record (strategy: IceStrategy, success: boolean, at = Date.now()): Promise<void> {
    const record = this.get(strategy)
    if (success) {
      record.successes++
      record.lastSuccessAt = at
    } else {
      record.failures++
      record.lastFailureAt = at
    }
    record.timeoutMs = clampTimeout(record.timeoutMs * (success ? SUCCESS_FACTOR : FAILURE_FACTOR))
    this.records.set(strategy, record)
    const save = this.saving.then(async () => { await this.save() })
    this.saving = save.catch(() => {})
    await save
  }

  private async save (): Promise<void> {
    const file = this.init.file
    if (file == null) return
    const content = JSON.stringify({ version: 1, strategies: Object.fromEntries(this.records) }, null, 2) + '\n'
    const temporary = `${file}.${process.pid}.tmp`
    await mkdir(dirname(file), { recursive: true })
    await writeFile(temporary, content, { mode: 0o600, flush: true })
    await rename(temporary, file)
  }
}
