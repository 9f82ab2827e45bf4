import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const PROGRAM = fileURLToPath(new URL('./stock-libp2p.ts', import.meta.url))

export interface StockPeer { peerId: string, circuit: string }
type Answer = { id: number, ok: true } & Record<string, unknown> | { id: number, ok: false, error: string }

/** A child process of stock js-libp2p clients (test/helpers/stock-libp2p.ts), driven command by command. */
export class StockClients {
  readonly stderr: string[] = []
  private readonly child: ChildProcessWithoutNullStreams
  private readonly pending = new Map<number, (answer: Answer) => void>()
  private nextId = 1

  /**
   * `knowsUdx`: let the clients parse /udx addresses (to measure gateways from before they left them out).
   * `profile` 'natmesh': the clients link to their gateway (its /udx address) with natmesh peers' settings
   */
  constructor (options: { knowsUdx?: boolean, profile?: 'stock' | 'natmesh' } = {}) {
    const env = { ...process.env, STOCK_KNOWS_UDX: options.knowsUdx === true ? '1' : '', CLIENT_PROFILE: options.profile ?? 'stock' }
    this.child = spawn(process.execPath, [PROGRAM], { stdio: ['pipe', 'pipe', 'pipe'], env })
    createInterface({ input: this.child.stderr }).on('line', line => { this.stderr.push(line) })
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      const answer = JSON.parse(line) as Answer
      this.pending.get(answer.id)?.(answer)
      this.pending.delete(answer.id)
    })
    this.child.on('exit', (code) => {
      for (const settle of this.pending.values()) settle({ id: 0, ok: false, error: `stock client process exited with ${String(code)}: ${this.stderr.join('\n')}` })
      this.pending.clear()
    })
  }

  get pid (): number | undefined {
    return this.child.pid
  }

  /** sends one command; resolves with its answer, rejects with the error it reports */
  async command<T = Record<string, unknown>> (command: Record<string, unknown>): Promise<T> {
    const id = this.nextId++
    const answer = new Promise<Answer>((resolve) => { this.pending.set(id, resolve) })
    this.child.stdin.write(JSON.stringify({ ...command, id }) + '\n')
    const result = await answer
    if (!result.ok) throw new Error(result.error)
    return result as T
  }

  /** starts `count` stock nodes on `host` that reserve on the relay at `relay` (a TCP address with /p2p/) */
  async reserve (relay: string, count = 1, host = '127.0.0.1', options: { concurrency?: number, attempts?: number } = {}): Promise<{ peers: StockPeer[], failed: number, failedAttempts: number, errors: string[], ms: number }> {
    return this.command({ cmd: 'reserve', relay, count, host, ...options })
  }

  async stop (): Promise<void> {
    if (this.child.exitCode != null || this.child.signalCode != null) return
    const exited = once(this.child, 'exit')
    this.child.stdin.end()
    await exited
  }
}
