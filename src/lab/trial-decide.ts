import type { HolePunchCode } from '../dcutr/index.js'
import type { TimedEvent } from './trial-process.js'

/** The hole-punch settings the peers run with; they decide how long a trial waits for a punch to give up. */
export interface PunchSettings {
  /** one attempt, --hole-punch-timeout-ms (default 5000) */
  timeoutMs: number
  /** attempts per relayed connection, --hole-punch-retries (default 3) */
  retries: number
  /** false with --mode relay-only or --no-nat-traversal: no DCUtR at all */
  enabled: boolean
  /** --gateway-dial-timeout-ms: how long a peer tries UDP before TCP */
  gatewayDialTimeoutMs: number
}

export const DEFAULT_PUNCH_SETTINGS: PunchSettings = { timeoutMs: 5000, retries: 3, enabled: true, gatewayDialTimeoutMs: 5000 }

/** after B's final hole-punch failure, how long A gets to report its side before the trial is called */
export const SIDE_GRACE_MS = 400
/** added to the peer's own wait for a direct path before the trial stops waiting for it */
export const PROBE_GRACE_MS = 500

/**
 * Reads the hole-punch settings out of peer CLI arguments (`--flag value` and `--flag=value`; the last one wins, as
 * with commander). Unknown arguments are ignored.
 */
export function punchSettingsFromArgs (args: readonly string[], base: PunchSettings = DEFAULT_PUNCH_SETTINGS): PunchSettings {
  const settings = { ...base }
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string
    const eq = arg.indexOf('=')
    const flag = eq >= 0 ? arg.slice(0, eq) : arg
    const value = (): string | undefined => eq >= 0 ? arg.slice(eq + 1) : args[i + 1]
    const num = (): number | undefined => {
      const v = Number(value())
      if (eq < 0) i++
      return Number.isFinite(v) ? v : undefined
    }
    switch (flag) {
      case '--hole-punch-timeout-ms': settings.timeoutMs = num() ?? settings.timeoutMs; break
      case '--hole-punch-retries': settings.retries = num() ?? settings.retries; break
      case '--gateway-dial-timeout-ms': settings.gatewayDialTimeoutMs = num() ?? settings.gatewayDialTimeoutMs; break
      case '--no-nat-traversal': settings.enabled = false; break
      case '--nat-traversal': settings.enabled = true; break
      case '--mode': {
        const mode = value()
        if (eq < 0) i++
        if (mode === 'relay-only') settings.enabled = false
        else if (mode === 'opportunistic') settings.enabled = true
        break
      }
      default: break
    }
  }
  return settings
}

/** How long peer A's probe waits for a direct path after its relay ping (mirrors src/cli/peer-command.ts). */
export function probeWaitMs (s: PunchSettings): number {
  return s.timeoutMs * Math.max(s.retries, 1) + 1000
}

/**
 * Why a trial is over, as a code (the text in `why` is for people):
 * - DIRECT: A pinged over the direct path;
 * - A_ERROR: A reported an error (its dial or a ping failed): the trial failed, whatever the path;
 * - DIAL_FINISHED: A's `--dial` probe finished (on the path it names);
 * - NO_PUNCHING: A pinged over the relay and the peers run without hole punching;
 * - PUNCH_FAILED_BOTH, PUNCH_FAILED_B, PUNCH_FAILED_A: the punch failed on both sides, on B (A stayed silent), or
 *   on A for every attempt;
 * - PUNCH_SKIPPED: B decided against a punch (`punchCode` says why, e.g. NO_UDP_PATH);
 * - PROBE_EXPIRED: A's own wait for a direct path ran out.
 */
export type VerdictCode =
  | 'DIRECT' | 'A_ERROR' | 'DIAL_FINISHED' | 'NO_PUNCHING'
  | 'PUNCH_FAILED_BOTH' | 'PUNCH_FAILED_B' | 'PUNCH_FAILED_A' | 'PUNCH_SKIPPED' | 'PROBE_EXPIRED'

export type Verdict =
  /** punchCode: the code of the hole-punch outcome that ended the trial (B's, else A's last), when it had one */
  | { done: true, code: VerdictCode, why: string, punchCode?: HolePunchCode }
  /** recheckAt: when the verdict may change without a new event (Date.now() scale) */
  | { done: false, recheckAt?: number }

/** how waiting for a verdict ended: with one, or without (a process exited, the deadline passed): `why` says */
export type TrialEnd = Extract<Verdict, { done: true }> | { done: false, why: string }

export interface TrialEvents {
  /** the dialling peer's events */
  a: readonly TimedEvent[]
  /** the dialled peer's events (it starts the DCUtR exchange) */
  b: readonly TimedEvent[]
  /** A's peer id, to pick B's events about A; undefined = take all */
  aPeerId?: string
}

const is = (name: string) => (t: TimedEvent): boolean => t.event.event === name

/**
 * Whether a trial is over, from the events seen so far:
 * - A pinged over the direct path: direct;
 * - A reported an error (its dial or a ping failed): over;
 * - after A's relay ping, the punch is over when B (which drives every attempt and reports once) gave up and A
 *   reported its side too (or could not have: B skipped, or A stayed silent for a short grace), when A failed as
 *   many attempts as there are retries, or when A's own wait for a direct path has run out.
 * A successful punch keeps the trial going until the direct ping (or the trial's timeout).
 */
export function decide (ev: TrialEvents, s: PunchSettings, now: number): Verdict {
  const directPing = ev.a.find((t) => is('ping')(t) && t.event.path === 'direct')
  if (directPing !== undefined) return { done: true, code: 'DIRECT', why: 'direct ping' }
  const error = ev.a.find(is('error'))
  if (error !== undefined) return { done: true, code: 'A_ERROR', why: `A reported an error: ${String(error.event.message)}` }
  // `peer --dial` exits once its probe is over
  const dialResult = ev.a.find(is('dial-result'))
  if (dialResult !== undefined) return { done: true, code: 'DIAL_FINISHED', why: `A's dial finished on the ${String(dialResult.event.path)} path` }
  const relayPing = ev.a.find((t) => is('ping')(t) && t.event.path === 'relay')
  if (relayPing === undefined) return { done: false }
  if (!s.enabled) return { done: true, code: 'NO_PUNCHING', why: 'relay ping (no hole punching configured)' }

  const aPunches = ev.a.filter(is('hole-punch'))
  const bPunches = ev.b.filter((t) => is('hole-punch')(t) && (ev.aPeerId === undefined || t.event.peer === ev.aPeerId))
  if ([...aPunches, ...bPunches].some((t) => t.event.outcome === 'success')) return { done: false }

  const aFailures = aPunches.filter((t) => t.event.outcome !== 'success')
  const bFinal = bPunches[0]
  const over = (code: VerdictCode, why: string, ...outcomes: Array<TimedEvent | undefined>): Verdict => {
    const punchCode = outcomes.map((t) => punchCodeOf(t)).find((c) => c !== undefined)
    return { done: true, code, why, ...(punchCode !== undefined ? { punchCode } : {}) }
  }
  if (bFinal !== undefined) {
    if (aFailures.length > 0) return over('PUNCH_FAILED_BOTH', 'hole punch failed on both sides', bFinal, aFailures.at(-1))
    if (bFinal.event.outcome === 'skipped') return over('PUNCH_SKIPPED', `B skipped the hole punch (${String(bFinal.event.reason ?? '')})`, bFinal)
    if (now >= bFinal.at + SIDE_GRACE_MS) return over('PUNCH_FAILED_B', 'hole punch failed on B; A stayed silent', bFinal)
  }
  if (aFailures.length >= Math.max(s.retries, 1)) return over('PUNCH_FAILED_A', 'hole punch failed on A for every attempt', aFailures.at(-1))
  const giveUpAt = relayPing.at + probeWaitMs(s) + PROBE_GRACE_MS
  if (now >= giveUpAt) return { done: true, code: 'PROBE_EXPIRED', why: 'A stopped waiting for a direct path' }
  const recheckAt = Math.min(giveUpAt, bFinal !== undefined ? bFinal.at + SIDE_GRACE_MS : Infinity)
  return { done: false, recheckAt }
}

/** the event's `code`, when it is one a hole punch reports */
function punchCodeOf (t: TimedEvent | undefined): HolePunchCode | undefined {
  const code = t?.event.code
  return typeof code === 'string' && code !== '' ? code as HolePunchCode : undefined
}

export interface VerdictWatch {
  /** both peers' events so far (read again at each check) */
  events: () => TrialEvents
  settings: PunchSettings
  deadline: number
  /** calls `check` whenever new events may be there; returns how to stop */
  watch: (check: () => void) => () => void
  /** why the trial can no longer be decided before its deadline (a peer exited), if it cannot */
  undecidable?: () => string | undefined
  /** the trial's end at the deadline */
  timedOut: string
  /** ends the wait after one last look at the events */
  signal?: AbortSignal
  aborted: string
}

/** Resolves once decide() calls the trial (re-checked on every change and at its recheck times), or it cannot be. */
export async function awaitVerdict (w: VerdictWatch): Promise<TrialEnd> {
  return await new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined
    let finished = false
    const finish = (end: TrialEnd): void => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      unwatch()
      w.signal?.removeEventListener('abort', onAbort)
      resolve(end)
    }
    const check = (): void => {
      if (finished) return
      const now = Date.now()
      const verdict = decide(w.events(), w.settings, now)
      if (verdict.done) { finish(verdict); return }
      const why = w.undecidable?.() ?? (now >= w.deadline ? w.timedOut : undefined)
      if (why !== undefined) { finish({ done: false, why }); return }
      clearTimeout(timer)
      timer = setTimeout(check, Math.max(0, Math.min(w.deadline, verdict.recheckAt ?? w.deadline) - now))
    }
    const onAbort = (): void => {
      check()
      finish({ done: false, why: w.aborted })
    }
    const unwatch = w.watch(check)
    w.signal?.addEventListener('abort', onAbort, { once: true })
    if (w.signal?.aborted === true) onAbort()
    else check()
  })
}

/** decide()'s input from the two peers' event lists: A's peer id from its `started` event */
export function trialEvents (a: readonly TimedEvent[], b: readonly TimedEvent[]): TrialEvents {
  const aPeerId = a.find((t) => t.event.event === 'started')?.event.peerId
  return { a, b, aPeerId: typeof aPeerId === 'string' ? aPeerId : undefined }
}
