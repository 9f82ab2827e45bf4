import { openSync, closeSync, readSync, fstatSync, unwatchFile, watchFile } from 'node:fs'
import type { NatFlavour } from './nat.js'
import { awaitVerdict, DEFAULT_PUNCH_SETTINGS, trialEvents, type PunchSettings } from './trial-decide.js'
import { parseEventLine, type TimedEvent } from './trial-process.js'
import { trialResult, type TrialPath, type TrialResult } from './trial-result.js'
import { defaultTrialTimeoutMs } from './trial.js'
import { punchExpected, summarize, type TrialSummary } from './trial-summary.js'

export interface VerdictOptions {
  /** the dialling peer's NAT flavour, and the file its `natmesh peer --json` events are written to */
  a: NatFlavour
  aEvents: string
  /** the dialled peer's */
  b: NatFlavour
  bEvents: string
  /** the peers' hole-punch settings (default: the peer's defaults) */
  settings?: PunchSettings
  /** give up this long after the start; default: long enough for the settings' every attempt */
  timeoutMs?: number
  /** how often the files are checked for new lines */
  pollMs?: number
  /** judge at once with what the files hold (e.g. on SIGTERM: the run is being stopped) */
  signal?: AbortSignal
}

export interface VerdictRun {
  result: TrialResult
  summary: TrialSummary
  /** direct where a hole punch can work between these flavours, relay where it cannot */
  expected: TrialPath
  /** the trial ended the way the flavours say it should, with no error */
  ok: boolean
}

/**
 * Judges one trial run by peers elsewhere (containers) from the JSON event lines they write to files, with the
 * same rules as the namespace lab (decide(), trialResult()). Event times come from the events' own `time`, so a
 * backlog read late is judged as it happened.
 */
export async function judgeEventFiles (opts: VerdictOptions): Promise<VerdictRun> {
  const settings = opts.settings ?? DEFAULT_PUNCH_SETTINGS
  const started = Date.now()
  const deadline = started + (opts.timeoutMs ?? defaultTrialTimeoutMs(settings))
  const a = new EventFile(opts.aEvents)
  const b = new EventFile(opts.bEvents)
  const why = await awaitVerdict({
    events: () => {
      a.read()
      b.read()
      return trialEvents(a.events, b.events)
    },
    settings,
    deadline,
    watch: (check) => {
      for (const f of [a, b]) watchFile(f.path, { interval: opts.pollMs ?? 100 }, check)
      return () => { for (const f of [a, b]) unwatchFile(f.path, check) }
    },
    timedOut: `no verdict within ${deadline - started} ms`,
    signal: opts.signal,
    aborted: 'stopped before a verdict'
  })
  const failure = !why.done || why.code === 'A_ERROR' ? why.why : undefined
  const timeOf = (f: EventFile, name: string): number | undefined => f.events.find((t) => t.event.event === name)?.at
  const bStart = timeOf(b, 'started')
  const bReservation = timeOf(b, 'reservation')
  const aStart = timeOf(a, 'started')
  const result = trialResult({
    trial: 1,
    a: opts.a,
    b: opts.b,
    aEvents: a.events.map((t) => t.event),
    bEvents: b.events.map((t) => t.event),
    ...(failure !== undefined ? { failure } : {}),
    durationMs: Date.now() - (bStart ?? started),
    phasesMs: {
      ...(bStart !== undefined && bReservation !== undefined ? { bReady: bReservation - bStart } : {}),
      ...(aStart !== undefined ? { aVerdict: Date.now() - aStart } : {}),
      // the peers run on: whoever started them stops them
      stop: 0
    },
    context: [a, b].map((f) => ({ title: `last events in ${f.path}`, text: f.tail(10) }))
  })
  const expected: TrialPath = punchExpected(opts.a, opts.b) ? 'direct' : 'relay'
  return { result, summary: summarize(opts.a, opts.b, [result]), expected, ok: result.path === expected && result.error === undefined }
}

/** A JSON-lines file another process appends to; read() takes in whatever was added since the last read. */
class EventFile {
  readonly events: TimedEvent[] = []
  private offset = 0
  private partial = ''

  constructor (readonly path: string) {}

  read (): void {
    let fd: number
    try {
      fd = openSync(this.path, 'r')
    } catch {
      // not written yet
      return
    }
    try {
      const size = fstatSync(fd).size
      if (size <= this.offset) return
      const buf = Buffer.alloc(size - this.offset)
      const n = readSync(fd, buf, 0, buf.length, this.offset)
      this.offset += n
      const lines = (this.partial + buf.subarray(0, n).toString('utf8')).split('\n')
      this.partial = lines.pop() ?? ''
      for (const line of lines) {
        const event = parseEventLine(line)
        if (event === undefined) continue
        const at = typeof event.time === 'string' ? Date.parse(event.time) : NaN
        this.events.push({ at: Number.isFinite(at) ? at : Date.now(), event })
      }
    } finally {
      closeSync(fd)
    }
  }

  tail (n: number): string {
    return this.events.slice(-n).map((t) => JSON.stringify(t.event)).join('\n')
  }
}
