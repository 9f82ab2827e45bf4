/**
 * What the gateway's main thread and its relay workers (relay-worker.ts) tell each other. Types only: the worker
 * imports nothing else of natmesh, so it also runs from source (node's type stripping) where the tests run src/.
 */

/** given to a worker when it starts: where its UDP socket binds */
export interface RelayWorkerData {
  host: string
  port: number
  /** how often circuits' byte counts are held against their data limits (the server's interval, passed in) */
  dataLimitCheckMs: number
  /** slot 0: payload bytes this worker forwarded so far (both directions, all its circuits), written by the worker */
  bytes: SharedArrayBuffer
}

/** main to worker; each `seq` gets exactly one reply with the same `seq` */
export type WorkerRequest =
  /**
   * two ends, ids chosen by the worker: end 0 for the source (its stream id known now), end 1 for the target
   * (its id comes with `join`). `hosts`: the IP each end's packets must come from (its gateway connection's)
   */
  | { op: 'open', seq: number, circuit: number, hosts: [string, string], sourceStreamId: number, dataLimit?: number }
  | { op: 'join', seq: number, circuit: number, targetStreamId: number }
  | { op: 'close', seq: number, circuit: number }

export type WorkerReply =
  | { op: 'ready', port: number }
  | { op: 'reply', seq: number, ids?: [number, number], error?: string }
  /** the worker ended a circuit of its own accord */
  | { op: 'ended', circuit: number, reason: WorkerEndReason, detail: string }

/**
 * `unreached`: an end's peer sent nothing to the worker's port in time (a firewall in the way, most likely);
 * `worker-failed` is the main thread's own, for the circuits of a worker that died
 */
export type WorkerEndReason = 'data-limit' | 'unreached' | 'peer-closed' | 'worker-failed'
