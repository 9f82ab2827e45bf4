import { createHash, randomFillSync } from 'node:crypto'
import { performance } from 'node:perf_hooks'
import type { Connection, Libp2p, Stream } from '@libp2p/interface'

/**
 * One bulk transfer over one libp2p stream, checked end to end.
 *
 * Wire format (sender → receiver): an 8-byte big-endian length, then that many payload bytes.
 * Reply (receiver → sender), sent once the whole payload is in: the 8-byte big-endian count of payload bytes
 * received, then the 32-byte sha256 of them, hashed incrementally as they arrived.
 */
export const THROUGHPUT_PROTOCOL = '/natmesh/bench/throughput/1.0.0'

const HEADER_BYTES = 8
const ACK_BYTES = 8 + 32

/** what the receiver of the transfer in flight has seen so far; read when a transfer stalls */
export interface ReceiverProgress {
  expected: number
  received: number
}

const progress: ReceiverProgress = { expected: -1, received: 0 }

export function receiverProgress (): ReceiverProgress {
  return { ...progress }
}

/**
 * Serves the throughput protocol on `node`: counts and hashes what arrives, acks when it has all of it.
 * `maxInboundStreams`: transfers at once per connection (libp2p's default is 32).
 */
export async function handleThroughput (node: Libp2p, maxInboundStreams?: number): Promise<void> {
  await node.handle(THROUGHPUT_PROTOCOL, async (stream: Stream) => {
    try {
      await receive(stream)
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }, { runOnLimitedConnection: true, ...(maxInboundStreams != null ? { maxInboundStreams } : {}) })
}

async function receive (stream: Stream): Promise<void> {
  const hash = createHash('sha256')
  const header = new Uint8Array(HEADER_BYTES)
  let headerFill = 0
  let expected = -1
  let received = 0
  let acked = false
  progress.expected = -1
  progress.received = 0

  for await (const chunk of stream) {
    const parts: Iterable<Uint8Array> = chunk instanceof Uint8Array ? [chunk] : chunk
    for (let part of parts) {
      if (expected < 0) {
        const take = Math.min(HEADER_BYTES - headerFill, part.byteLength)
        header.set(part.subarray(0, take), headerFill)
        headerFill += take
        part = part.subarray(take)
        if (headerFill < HEADER_BYTES) continue
        expected = Number(new DataView(header.buffer).getBigUint64(0))
        progress.expected = expected
      }
      if (part.byteLength > 0) {
        hash.update(part)
        received += part.byteLength
      }
    }
    progress.received = received
    if (!acked && expected >= 0 && received >= expected) {
      acked = true
      const ack = new Uint8Array(ACK_BYTES)
      new DataView(ack.buffer).setBigUint64(0, BigInt(received))
      ack.set(hash.digest(), 8)
      stream.send(ack)
    }
  }
  // the sender closed its side; an unacked transfer ends here, and the sender reports what it missed
  await stream.close()
}

export interface Payload {
  bytes: Uint8Array
  sha256: Buffer
}

/** Fresh random bytes and their sha256 (computed here, outside the timed part). */
export function makePayload (size: number, reuse?: Uint8Array): Payload {
  const bytes = reuse?.byteLength === size ? reuse : new Uint8Array(size)
  // randomFillSync caps one call at 2^31-1 bytes; fill in slices so any size works
  for (let off = 0; off < size; off += 1 << 30) randomFillSync(bytes, off, Math.min(1 << 30, size - off))
  return { bytes, sha256: createHash('sha256').update(bytes).digest() }
}

export interface TransferResult {
  bytes: number
  ms: number
  mbps: number
  /** most bytes the sender had handed to the stream but the receiver's handler had not yet read */
  maxInFlight: number
}

export class TransferError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'TransferError'
  }
}

export interface SendOptions {
  chunkBytes: number
  timeoutMs: number
  /** names the path in error messages */
  label: string
}

/**
 * Opens a fresh stream on `connection`, writes the payload in `chunkBytes` chunks honouring backpressure
 * (`send()` false → wait for drain), and waits for the receiver's ack. Timed from the first write to the ack.
 * Throws a TransferError when the checksum or the byte count differ, or when nothing finishes within `timeoutMs`.
 */
export async function sendPayload (connection: Connection, payload: Payload, options: SendOptions): Promise<TransferResult> {
  const { bytes } = payload
  const controller = new AbortController()
  const timer = setTimeout(() => { controller.abort() }, options.timeoutMs)
  const signal = controller.signal
  progress.expected = -1
  progress.received = 0
  let sent = 0
  let maxInFlight = 0
  let stage = 'opening the stream'
  let stream: Stream | undefined
  const where = (): string => `while ${stage}; sender queued ${mib(sent)} of ${mib(bytes.byteLength)} MiB, ` +
    `receiver got ${mib(receiverProgress().received)} MiB; connection ${connection.status}, stream ${stream?.status ?? 'not open'}`
  const stalled = (): TransferError => new TransferError(`${options.label}: no ack within ${options.timeoutMs} ms (stalled ${where()})`)

  try {
    stream = await connection.newStream(THROUGHPUT_PROTOCOL, { runOnLimitedConnection: true, signal, maxOutboundStreams: 1024 })
    const s = stream
    const ack = collectAck(s)
    const aborted = new Promise<never>((_resolve, reject) => {
      signal.addEventListener('abort', () => { reject(stalled()) }, { once: true })
    })
    aborted.catch(() => {})

    stage = 'writing'
    const header = new Uint8Array(HEADER_BYTES)
    new DataView(header.buffer).setBigUint64(0, BigInt(bytes.byteLength))
    const start = performance.now()
    let ready = s.send(header)
    for (let off = 0; off < bytes.byteLength; off += options.chunkBytes) {
      if (!ready) await Promise.race([drained(s), aborted])
      const chunk = bytes.subarray(off, Math.min(off + options.chunkBytes, bytes.byteLength))
      ready = s.send(chunk)
      sent += chunk.byteLength
      // the receiver runs in this process, so its progress can be read directly
      maxInFlight = Math.max(maxInFlight, sent - progress.received)
    }
    stage = 'waiting for the ack'
    const reply = await Promise.race([ack.reply, aborted])
    const ms = performance.now() - start

    const view = new DataView(reply.buffer, reply.byteOffset, reply.byteLength)
    const receivedCount = Number(view.getBigUint64(0))
    const receivedSha = Buffer.from(reply.subarray(8, ACK_BYTES))
    if (receivedCount !== bytes.byteLength) {
      throw new TransferError(`${options.label}: receiver counted ${receivedCount} bytes, sender sent ${bytes.byteLength}`)
    }
    if (!receivedSha.equals(payload.sha256)) {
      throw new TransferError(`${options.label}: CORRUPTED: sha256 of received bytes ${receivedSha.toString('hex')} != sent ${payload.sha256.toString('hex')}`)
    }

    stage = 'closing the stream'
    await Promise.race([s.close({ signal }), aborted])
    await Promise.race([ack.done, aborted])
    return { bytes: bytes.byteLength, ms, mbps: bytes.byteLength / 1e6 / (ms / 1000), maxInFlight }
  } catch (err) {
    const error = err instanceof TransferError
      ? err
      : signal.aborted
        ? stalled()
        : new TransferError(`${options.label}: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)} (${where()})`)
    stream?.abort(error instanceof Error ? error : new Error(String(error)))
    throw error
  } finally {
    clearTimeout(timer)
  }
}

/**
 * Waits for the stream's 'drain' event. Not `stream.onDrain()`: in @libp2p/utils 7.4.1 it never forgets the
 * promise it resolved on the first drain, so every later call resolves at once and backpressure is lost
 * (the whole payload piles up in the stream's write buffer).
 */
async function drained (stream: Stream): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onDrain = (): void => { stream.removeEventListener('close', onClose); resolve() }
    const onClose = (evt: Event): void => {
      stream.removeEventListener('drain', onDrain)
      reject((evt as Event & { error?: Error }).error ?? new Error('the stream closed while waiting for drain'))
    }
    stream.addEventListener('drain', onDrain, { once: true })
    stream.addEventListener('close', onClose, { once: true })
  })
}

/** Reads the whole inbound side of the sender's stream: `reply` resolves with the ack, `done` when the stream ends. */
function collectAck (stream: Stream): { reply: Promise<Uint8Array>, done: Promise<void> } {
  // (no Promise.withResolvers: the project's lib is ES2023)
  let resolveReply!: (ack: Uint8Array) => void
  let rejectReply!: (err: unknown) => void
  const reply = { promise: new Promise<Uint8Array>((resolve, reject) => { resolveReply = resolve; rejectReply = reject }), resolve: (ack: Uint8Array) => { resolveReply(ack) }, reject: (err: unknown) => { rejectReply(err) } }
  const buffer = new Uint8Array(ACK_BYTES)
  let fill = 0
  const done = (async () => {
    for await (const chunk of stream) {
      const parts: Iterable<Uint8Array> = chunk instanceof Uint8Array ? [chunk] : chunk
      for (const part of parts) {
        const take = Math.min(ACK_BYTES - fill, part.byteLength)
        buffer.set(part.subarray(0, take), fill)
        fill += take
        if (part.byteLength > take) reply.reject(new TransferError(`receiver sent ${part.byteLength - take} unexpected bytes after the ack`))
      }
      if (fill === ACK_BYTES) reply.resolve(buffer)
    }
    if (fill < ACK_BYTES) reply.reject(new TransferError(`the receiver closed the stream before acking (got ${fill}/${ACK_BYTES} ack bytes)`))
  })()
  done.catch((err) => { reply.reject(err) })
  reply.promise.catch(() => {})
  return { reply: reply.promise, done: done.catch(() => {}) }
}

export function mib (bytes: number): string {
  return (bytes / 1048576).toFixed(1)
}

export function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}
