/**
 * A relay worker (worker_threads): a udx instance and UDP socket of its own, on its own event loop and so its
 * own core, that joins forwarded circuits the main thread hands it (see relay-workers.ts). Each circuit is two
 * streams of this socket that relay to each other inside udx, as in-loop forwarding does; the difference is that
 * an end learns its peer's address from the peer's first packet (udx's firewall callback), since the peer's NAT
 * mapping towards this port is not the one the gateway's main socket sees. Data limits are checked here, as often
 * as the server checks its own (`dataLimitCheckMs`), where the byte counts are.
 */
import { parentPort, workerData } from 'node:worker_threads'
import UDX from 'udx-native'
import type { UDXSocket, UDXStream } from 'udx-native'
import type { RelayWorkerData, WorkerEndReason, WorkerReply, WorkerRequest } from './worker-messages.js'

/** how long both peers have, once the circuit is joined, to send their first packet to this worker's port */
const WORKER_REACH_TIMEOUT_MS = 2500
/** udx's packet header, which its byte counts include */
const UDX_HEADER_BYTES = 20

interface End {
  stream: UDXStream
  /** the IP this end's peer reaches the gateway from; packets from elsewhere are dropped */
  host: string
  remoteId?: number
  /** where the peer's first packet came from, until the end can connect to it */
  seen?: { port: number, host: string }
}

interface Circuit {
  ends: [End, End]
  dataLimit?: number
  reachTimer?: NodeJS.Timeout
}

if (parentPort == null) throw new Error('relay-worker.js runs as a worker thread')
const port = parentPort
const init = workerData as RelayWorkerData
const udx = new UDX()
const socket = udx.createSocket()
const circuits = new Map<number, Circuit>()
const streamIds = new Set<number>()
const total = new BigInt64Array(init.bytes)
let closedBytes = 0
let sweep: NodeJS.Timeout | undefined

socket.on('error', () => {})
socket.bind(init.port, init.host)

function post (message: WorkerReply): void {
  port.postMessage(message)
}

function connect (end: End, via: UDXSocket, at: { port: number, host: string }): void {
  if (end.remoteId == null || end.stream.connected) return
  end.stream.connect(via, end.remoteId, at.port, at.host)
}

function openEnd (host: string): End {
  let id: number
  do {
    id = crypto.getRandomValues(new Uint32Array(1))[0] ?? 0
  } while (id === 0 || streamIds.has(id))
  streamIds.add(id)
  const end: End = {
    host,
    stream: udx.createStream(id, {
      // called for packets of this stream while it is not connected: true drops the packet
      firewall: (via, fromPort, fromHost) => {
        if (fromHost !== end.host) return true
        end.seen = { port: fromPort, host: fromHost }
        if (end.remoteId == null) return true
        try {
          connect(end, via, end.seen)
        } catch {
          // an exception here would be uncaught in udx's callback and end the worker
          return true
        }
        return false
      }
    })
  }
  end.stream.on('error', () => {})
  end.stream.once('close', () => { streamIds.delete(id) })
  return end
}

function payloadBytes (circuit: Circuit): number {
  return circuit.ends.reduce((sum, end) => sum + end.stream.bytesReceived - UDX_HEADER_BYTES * end.stream.packetsReceived, 0)
}

function end (id: number, reason?: { reason: WorkerEndReason, detail: string }): void {
  const circuit = circuits.get(id)
  if (circuit == null) return
  circuits.delete(id)
  clearTimeout(circuit.reachTimer)
  closedBytes += payloadBytes(circuit)
  for (const e of circuit.ends) e.stream.destroy()
  if (reason != null) post({ op: 'ended', circuit: id, ...reason })
  publishBytes()
}

function publishBytes (): void {
  let sum = closedBytes
  for (const circuit of circuits.values()) sum += payloadBytes(circuit)
  Atomics.store(total, 0, BigInt(sum))
}

/** Publishes the byte count and cuts circuits past their data limit; runs while any circuit is open. */
function check (): void {
  publishBytes()
  for (const [id, circuit] of circuits) {
    if (circuit.dataLimit != null && payloadBytes(circuit) > circuit.dataLimit) {
      end(id, { reason: 'data-limit', detail: `data limit of ${circuit.dataLimit} bytes exceeded` })
    }
  }
  if (circuits.size === 0) {
    clearInterval(sweep)
    sweep = undefined
  }
}

function onRequest (request: WorkerRequest): void {
  switch (request.op) {
    case 'open': {
      const ends: [End, End] = [openEnd(request.hosts[0]), openEnd(request.hosts[1])]
      ends[0].remoteId = request.sourceStreamId
      ends[0].stream.relayTo(ends[1].stream)
      ends[1].stream.relayTo(ends[0].stream)
      for (const e of ends) e.stream.once('close', () => { end(request.circuit, { reason: 'peer-closed', detail: 'a peer closed its end' }) })
      circuits.set(request.circuit, { ends, dataLimit: request.dataLimit })
      sweep ??= setInterval(check, init.dataLimitCheckMs)
      post({ op: 'reply', seq: request.seq, ids: [ends[0].stream.id, ends[1].stream.id] })
      return
    }
    case 'join': {
      const circuit = circuits.get(request.circuit)
      if (circuit == null) {
        post({ op: 'reply', seq: request.seq, error: 'the circuit ended' })
        return
      }
      const target = circuit.ends[1]
      target.remoteId = request.targetStreamId
      // the target connects and sends first (see the client), so its address is usually known by now
      if (target.seen != null) connect(target, socket, target.seen)
      circuit.reachTimer = setTimeout(() => {
        const silent = circuit.ends.map((e, i) => e.stream.connected ? undefined : ['source', 'target'][i]).filter(name => name != null)
        if (silent.length > 0) end(request.circuit, { reason: 'unreached', detail: `no packet from the ${silent.join(' and ')} reached relay worker port ${socket.address()?.port ?? '?'} within ${WORKER_REACH_TIMEOUT_MS} ms` })
      }, WORKER_REACH_TIMEOUT_MS)
      post({ op: 'reply', seq: request.seq })
      return
    }
    case 'close':
      end(request.circuit)
      post({ op: 'reply', seq: request.seq })
  }
}

port.on('message', (request: WorkerRequest) => {
  try {
    onRequest(request)
  } catch (err) {
    post({ op: 'reply', seq: request.seq, error: err instanceof Error ? err.message : String(err) })
  }
})
post({ op: 'ready', port: socket.address()?.port ?? 0 })
