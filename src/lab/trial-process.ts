import type { ChildProcess } from 'node:child_process'

/** One JSON line a natmesh daemon printed with --json: at least an `event` name. */
export type JsonEvent = Record<string, unknown> & { event: string, time?: string }

/** Parses one stdout line; anything that is not a JSON object with a string `event` is ignored (undefined). */
export function parseEventLine (line: string): JsonEvent | undefined {
  const text = line.trim()
  if (!text.startsWith('{')) return undefined
  try {
    const value: unknown = JSON.parse(text)
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined
    if (typeof (value as { event?: unknown }).event !== 'string') return undefined
    return value as JsonEvent
  } catch {
    return undefined
  }
}

/** Keeps the last `maxBytes` of a stream (roughly: whole chunks are dropped from the front). */
export class TailBuffer {
  private chunks: string[] = []
  private size = 0

  constructor (private readonly maxBytes = 32 * 1024) {}

  push (chunk: string): void {
    this.chunks.push(chunk)
    this.size += chunk.length
    while (this.size > this.maxBytes && this.chunks.length > 1) {
      this.size -= (this.chunks.shift() as string).length
    }
  }

  /** the last `lines` lines (each cut to 400 characters) */
  tail (lines = 20): string {
    const all = this.chunks.join('').split('\n').filter((l) => l.trim() !== '')
    return all.slice(-lines).map((l) => l.length > 400 ? `${l.slice(0, 400)}…` : l).join('\n')
  }

  text (): string {
    return this.chunks.join('')
  }
}

export interface TimedEvent {
  /** when we read it (Date.now(), our clock rather than the event's own `time`) */
  at: number
  event: JsonEvent
}

/**
 * A natmesh daemon the lab started: its JSON events (stdout, malformed lines ignored), a tail of its stderr,
 * and how it ended. Listeners registered with onEvent/onExit drive the trial's decision.
 */
export class LabProcess {
  readonly events: TimedEvent[] = []
  readonly stderr = new TailBuffer()
  readonly startedAt = Date.now()
  exitCode: number | null = null
  exitSignal: NodeJS.Signals | null = null
  spawnError?: Error
  private partial = ''
  private readonly exited: Promise<void>
  private readonly listeners = new Set<() => void>()

  constructor (readonly name: string, readonly child: ChildProcess) {
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => { this.onStdout(chunk) })
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { this.stderr.push(chunk) })
    // writing to (or closing) the stdin of a process that already died fails with EPIPE; its exit tells us more
    child.stdin?.on('error', () => {})
    this.exited = new Promise((resolve) => {
      child.once('error', (err) => {
        this.spawnError = err
        // a child that never started emits no 'exit'
        if (child.pid === undefined) { this.notify(); resolve() }
      })
      // 'close' waits for stdio to drain as well, so every printed event has been read by then
      child.once('close', (code, signal) => {
        if (this.partial !== '') this.onLine(this.partial)
        this.partial = ''
        this.exitCode = code
        this.exitSignal = signal
        this.notify()
        resolve()
      })
    })
  }

  get running (): boolean {
    return this.exitCode === null && this.exitSignal === null && this.spawnError === undefined
  }

  /** calls `listener` after every event and on exit; returns the unsubscribe function */
  onChange (listener: () => void): () => void {
    this.listeners.add(listener)
    return () => { this.listeners.delete(listener) }
  }

  find (pred: (e: JsonEvent) => boolean): JsonEvent | undefined {
    return this.events.find((t) => pred(t.event))?.event
  }

  filter (pred: (e: JsonEvent) => boolean): JsonEvent[] {
    return this.events.filter((t) => pred(t.event)).map((t) => t.event)
  }

  /** Resolves with the first event matching `pred`; rejects on exit or after `timeoutMs`. */
  async waitFor (pred: (e: JsonEvent) => boolean, timeoutMs: number, what: string): Promise<JsonEvent> {
    return await new Promise((resolve, reject) => {
      const check = (): boolean => {
        const found = this.find(pred)
        if (found !== undefined) { done(); resolve(found); return true }
        if (!this.running) { done(); reject(new Error(`${this.name} ${this.describeExit()} before ${what}`)); return true }
        return false
      }
      const timer = setTimeout(() => { done(); reject(new Error(`${this.name}: no ${what} within ${timeoutMs} ms`)) }, timeoutMs)
      const off = this.onChange(() => { check() })
      const done = (): void => { clearTimeout(timer); off() }
      check()
    })
  }

  describeExit (): string {
    if (this.spawnError !== undefined) return `could not start (${this.spawnError.message})`
    if (this.exitSignal !== null) return `was killed by ${this.exitSignal}`
    if (this.exitCode !== null) return `exited with code ${this.exitCode}`
    return 'is running'
  }

  /** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
  async stop (graceMs = 2000): Promise<void> {
    if (this.running) {
      this.child.kill('SIGTERM')
      const timer = setTimeout(() => { if (this.running) this.child.kill('SIGKILL') }, graceMs)
      await this.exited
      clearTimeout(timer)
    }
    await this.exited
  }

  async whenExited (): Promise<void> {
    await this.exited
  }

  private onStdout (chunk: string): void {
    const lines = (this.partial + chunk).split('\n')
    this.partial = lines.pop() ?? ''
    // a process that floods stdout without newlines must not grow the buffer forever
    if (this.partial.length > 1024 * 1024) this.partial = ''
    for (const line of lines) this.onLine(line)
  }

  private onLine (line: string): void {
    const event = parseEventLine(line)
    if (event === undefined) return
    this.events.push({ at: Date.now(), event })
    this.notify()
  }

  private notify (): void {
    for (const listener of [...this.listeners]) listener()
  }
}
