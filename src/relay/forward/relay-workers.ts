import { Worker } from 'node:worker_threads'
import type { Logger } from '@libp2p/interface'
import type { RelayWorkerData, WorkerEndReason, WorkerReply, WorkerRequest } from './worker-messages.js'

/** a request without its `seq`, each kind keeping its own fields */
type Request<R = WorkerRequest> = R extends unknown ? Omit<R, 'seq'> : never

export interface WorkerCircuit {
  /** the worker's UDP port, which both peers send their circuit's packets to */
  port: number
  /** the worker's stream ids: index 0 for the source, 1 for the target */
  ids: [number, number]
  /** with the target's stream id: the worker may now connect both ends */
  join: (targetStreamId: number) => Promise<void>
  close: () => void
}

export interface RelayWorkersInit {
  /** how many workers; each runs its own event loop, so its own core */
  count: number
  /** the IP the gateway's UDP overlay socket is bound to; the workers bind there too */
  host: string
  /** worker i binds `basePort + i`; 0: ephemeral ports */
  basePort: number
  dataLimitCheckMs: number
  log: Logger
  /** a worker died (its circuits have been told) */
  onFailed: (port: number, err: Error) => void
}

/** One relay worker thread, seen from the main thread: request/reply over postMessage. */
class RelayWorker {
  readonly port: number
  private readonly worker: Worker
  private readonly bytes: BigInt64Array
  private readonly pending = new Map<number, (reply: Extract<WorkerReply, { op: 'reply' }>) => void>()
  private readonly ended = new Map<number, (reason: WorkerEndReason, detail: string) => void>()
  private seq = 0
  circuits = 0
  alive = true

  private constructor (worker: Worker, port: number, bytes: BigInt64Array) {
    this.worker = worker
    this.port = port
    this.bytes = bytes
    worker.on('message', (message: WorkerReply) => {
      if (message.op === 'reply') {
        this.pending.get(message.seq)?.(message)
        this.pending.delete(message.seq)
      } else if (message.op === 'ended') {
        this.ended.get(message.circuit)?.(message.reason, message.detail)
      }
    })
  }

  static async start (data: Omit<RelayWorkerData, 'bytes'>, onExit: (worker: RelayWorker | undefined, err: Error) => void): Promise<RelayWorker> {
    const bytes = new SharedArrayBuffer(8)
    // beside this module: compiled (dist/) or, where src/ runs as it is (tests), the source itself
    const worker = new Worker(new URL(import.meta.url.endsWith('.ts') ? './relay-worker.ts' : './relay-worker.js', import.meta.url), { workerData: { ...data, bytes } satisfies RelayWorkerData })
    let started: RelayWorker | undefined
    const port = await new Promise<number>((resolve, reject) => {
      worker.once('message', (message: WorkerReply) => { if (message.op === 'ready') resolve(message.port) })
      worker.once('error', reject)
      worker.once('exit', (code) => { reject(new Error(`the relay worker exited with code ${code}`)) })
    })
    started = new RelayWorker(worker, port, new BigInt64Array(bytes))
    worker.on('error', (err) => { onExit(started, err) })
    worker.on('exit', (code) => { onExit(started, new Error(`the relay worker on port ${port} exited with code ${code}`)) })
    return started
  }

  /** payload bytes forwarded so far, open and closed circuits */
  get forwardedBytes (): number {
    return Number(Atomics.load(this.bytes, 0))
  }

  async request (request: Request): Promise<Extract<WorkerReply, { op: 'reply' }>> {
    if (!this.alive) throw new Error(`the relay worker on port ${this.port} is gone`)
    const seq = ++this.seq
    const reply = new Promise<Extract<WorkerReply, { op: 'reply' }>>(resolve => { this.pending.set(seq, resolve) })
    this.worker.postMessage({ ...request, seq })
    const answer = await reply
    if (answer.error != null) throw new Error(answer.error)
    return answer
  }

  /** Ends every circuit this worker holds (it died, or the gateway stops). */
  fail (err: Error): void {
    this.alive = false
    for (const [seq, resolve] of this.pending) resolve({ op: 'reply', seq, error: err.message })
    this.pending.clear()
    for (const onEnded of [...this.ended.values()]) onEnded('worker-failed', err.message)
    this.ended.clear()
  }

  onEnded (circuit: number, listener: ((reason: WorkerEndReason, detail: string) => void) | undefined): void {
    if (listener == null) this.ended.delete(circuit)
    else this.ended.set(circuit, listener)
  }

  async terminate (): Promise<void> {
    this.alive = false
    await this.worker.terminate()
  }
}

/**
 * The gateway's relay workers: forwarded circuits spread over several threads, each with its own udx instance
 * and UDP port, so forwarding uses more than one core. A circuit goes to the worker holding the fewest. A worker
 * that dies takes only its own circuits with it (their peers see them end and dial again) and gets no new ones.
 */
export class RelayWorkers {
  private readonly workers: RelayWorker[]
  private readonly log: Logger
  private nextCircuit = 0

  private constructor (workers: RelayWorker[], log: Logger) {
    this.workers = workers
    this.log = log
  }

  static async start (init: RelayWorkersInit): Promise<RelayWorkers> {
    const workers: RelayWorker[] = []
    const onExit = (worker: RelayWorker | undefined, err: Error): void => {
      if (worker == null || !worker.alive) return
      init.log.error('relay worker on UDP port %d failed; its circuits end, new ones go to the other workers or in-loop - %e', worker.port, err)
      worker.fail(err)
      init.onFailed(worker.port, err)
    }
    try {
      for (let i = 0; i < init.count; i++) {
        workers.push(await RelayWorker.start({ host: init.host, port: init.basePort === 0 ? 0 : init.basePort + i, dataLimitCheckMs: init.dataLimitCheckMs }, onExit))
      }
    } catch (err) {
      await Promise.all(workers.map(async w => { await w.terminate() }))
      throw new Error(`could not start relay worker ${workers.length + 1} of ${init.count} on ${init.host}:${init.basePort === 0 ? 'an ephemeral port' : init.basePort + workers.length}: ${err instanceof Error ? err.message : String(err)}`)
    }
    init.log('%d relay workers on UDP ports %s', workers.length, workers.map(w => w.port).join(', '))
    return new RelayWorkers(workers, init.log)
  }

  get ports (): number[] {
    return this.workers.filter(w => w.alive).map(w => w.port)
  }

  /** payload bytes the workers forwarded so far */
  get forwardedBytes (): number {
    return this.workers.reduce((sum, w) => sum + w.forwardedBytes, 0)
  }

  /**
   * A circuit on the least busy live worker, or undefined when none is left. `onEnded`: the worker ended it
   * (data limit, a peer that never reached its port, a peer that closed, the worker's death).
   */
  async open (init: { hosts: [string, string], sourceStreamId: number, dataLimit?: number }, onEnded: (reason: WorkerEndReason, detail: string) => void): Promise<WorkerCircuit | undefined> {
    const worker = this.workers.filter(w => w.alive).sort((a, b) => a.circuits - b.circuits)[0]
    if (worker == null) return undefined
    const circuit = ++this.nextCircuit
    worker.onEnded(circuit, (reason, detail) => { done(); onEnded(reason, detail) })
    worker.circuits++
    let closed = false
    const done = (): void => {
      if (closed) return
      closed = true
      worker.circuits--
      worker.onEnded(circuit, undefined)
    }
    try {
      const { ids } = await worker.request({ op: 'open', circuit, ...init })
      if (ids == null) throw new Error('the relay worker named no stream ids')
      return {
        port: worker.port,
        ids,
        join: async (targetStreamId) => { await worker.request({ op: 'join', circuit, targetStreamId }) },
        close: () => {
          if (closed) return
          done()
          worker.request({ op: 'close', circuit }).catch(() => {})
        }
      }
    } catch (err) {
      done()
      throw err
    }
  }

  async stop (): Promise<void> {
    await Promise.all(this.workers.map(async w => { await w.terminate() }))
    this.log('relay workers stopped')
  }
}
