import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { performance } from 'node:perf_hooks'
import type { Duplex } from 'node:stream'
import type { Stream } from '@libp2p/interface'

/**
 * The bulk transfer of bench/bulk.ts, the same over every stack it compares (libp2p streams, natmesh sessions,
 * Node duplexes: TCP sockets, udx streams, secret-streams), so they differ only in the stack under it.
 *
 * Sender → receiver: a 9-byte header (8-byte big-endian length, 1 byte: 1 = hash what arrives), then the
 * payload. Receiver → sender, once it holds every byte: the 8-byte count received and 32 bytes of sha256 (zeros
 * when not hashing). Timed rounds do not hash, so CPU per MiB is the stack's own; the warm-up round hashes, so
 * every path is checked end to end once.
 */
export const BULK_PROTOCOL = '/natmesh/bench/bulk/1.0.0'
const HEADER_BYTES = 9
export const ACK_BYTES = 8 + 32

/** a byte pipe as the sender sees it */
export interface Pipe {
  /** resolves at once, or once the pipe wants more */
  write: (bytes: Uint8Array) => Promise<void> | undefined
  /** the receiver's 40-byte ack, whatever the pipe chunked it into */
  ack: () => Promise<Uint8Array>
}

/** Receiver side: feed it whatever arrives; it calls `reply` with the ack when the transfer is complete. */
export function receiver (reply: (ack: Uint8Array) => void): (chunk: Uint8Array) => void {
  const header = new Uint8Array(HEADER_BYTES)
  let headerFill = 0
  let expected = -1
  let received = 0
  let hash: ReturnType<typeof createHash> | undefined
  return (chunk) => {
    let part = chunk
    while (part.byteLength > 0) {
      if (expected < 0) {
        const take = Math.min(HEADER_BYTES - headerFill, part.byteLength)
        header.set(part.subarray(0, take), headerFill)
        headerFill += take
        part = part.subarray(take)
        if (headerFill < HEADER_BYTES) return
        expected = Number(new DataView(header.buffer).getBigUint64(0))
        hash = header[8] === 1 ? createHash('sha256') : undefined
        received = 0
      }
      const take = Math.min(expected - received, part.byteLength)
      hash?.update(part.subarray(0, take))
      received += take
      part = part.subarray(take)
      if (received === expected) {
        const ack = new Uint8Array(ACK_BYTES)
        new DataView(ack.buffer).setBigUint64(0, BigInt(received))
        if (hash != null) ack.set(hash.digest(), 8)
        expected = -1
        headerFill = 0
        reply(ack)
      }
    }
  }
}

/** Collects `ACK_BYTES` from chunks; resolves the pending ack promise when they are in. */
function ackCollector (): { feed: (chunk: Uint8Array) => void, next: () => Promise<Uint8Array>, fail: (err: Error) => void } {
  let buffer = new Uint8Array(ACK_BYTES)
  let fill = 0
  let waiter: { resolve: (ack: Uint8Array) => void, reject: (err: Error) => void } | undefined
  let failure: Error | undefined
  return {
    feed: (chunk) => {
      buffer.set(chunk.subarray(0, ACK_BYTES - fill), fill)
      fill += Math.min(chunk.byteLength, ACK_BYTES - fill)
      if (fill === ACK_BYTES) {
        const ack = buffer
        buffer = new Uint8Array(ACK_BYTES)
        fill = 0
        waiter?.resolve(ack)
        waiter = undefined
      }
    },
    next: async () => {
      if (failure != null) throw failure
      return new Promise((resolve, reject) => { waiter = { resolve, reject } })
    },
    fail: (err) => { failure = err; waiter?.reject(err) }
  }
}

export interface SendResult {
  ms: number
  /** sha256 the receiver computed, hex; '' when the round did not hash */
  sha256: string
  received: number
}

/** Writes `payload` through `pipe` in `chunkBytes` writes; timed from the first write to the ack. */
export async function sendOver (pipe: Pipe, payload: Uint8Array, chunkBytes: number, verify: boolean): Promise<SendResult> {
  const header = new Uint8Array(HEADER_BYTES)
  new DataView(header.buffer).setBigUint64(0, BigInt(payload.byteLength))
  header[8] = verify ? 1 : 0
  const ack = pipe.ack()
  const start = performance.now()
  await pipe.write(header)
  for (let off = 0; off < payload.byteLength; off += chunkBytes) await pipe.write(payload.subarray(off, off + chunkBytes))
  const reply = await ack
  const ms = performance.now() - start
  const received = Number(new DataView(reply.buffer, reply.byteOffset, 8).getBigUint64(0))
  return { ms, received, sha256: verify ? Buffer.from(reply.subarray(8)).toString('hex') : '' }
}

/** A Node duplex (net.Socket, udx stream, secret-stream) as a pipe: write() false → wait for 'drain'. */
export function duplexPipe (socket: Duplex): Pipe {
  const acks = ackCollector()
  socket.on('data', (chunk: Uint8Array) => { acks.feed(chunk) })
  socket.once('close', () => { acks.fail(new Error('the stream closed')) })
  socket.on('error', (err: Error) => { acks.fail(err) })
  return {
    write: (bytes) => socket.write(bytes) ? undefined : once(socket, 'drain').then(() => {}),
    ack: acks.next
  }
}

/** Serves the bulk transfer on a Node duplex. */
export function serveDuplex (socket: Duplex): void {
  socket.on('data', receiver(ack => { socket.write(ack) }))
  // the sender's end going away (a reset at teardown) ends this transfer, not the process
  socket.on('error', () => { socket.destroy() })
}

/**
 * A libp2p stream as a pipe. Waits for 'drain' by listener, not `stream.onDrain()` (see bench/lib/transfer.ts:
 * in @libp2p/utils 7.4 it resolves at once after the first drain).
 */
export function libp2pPipe (stream: Stream): Pipe {
  const acks = ackCollector()
  stream.addEventListener('message', (evt) => {
    const data = evt.data
    for (const part of data instanceof Uint8Array ? [data] : data) acks.feed(part)
  })
  stream.addEventListener('close', () => { acks.fail(new Error(`the stream closed (${stream.status})`)) })
  const drained = async (): Promise<void> => new Promise((resolve, reject) => {
    const onDrain = (): void => { stream.removeEventListener('close', onClose); resolve() }
    const onClose = (): void => { stream.removeEventListener('drain', onDrain); reject(new Error('the stream closed while waiting for drain')) }
    stream.addEventListener('drain', onDrain, { once: true })
    stream.addEventListener('close', onClose, { once: true })
  })
  return {
    write: (bytes) => stream.send(bytes) ? undefined : drained(),
    ack: acks.next
  }
}

/** Serves the bulk transfer on a libp2p stream. */
export function serveLibp2p (stream: Stream): void {
  const feed = receiver(ack => { stream.send(ack) })
  stream.addEventListener('message', (evt) => {
    const data = evt.data
    for (const part of data instanceof Uint8Array ? [data] : data) feed(part)
  })
}

/** A natmesh session: one message per write, acks come back as messages. */
export interface MessageChannel extends AsyncIterable<Uint8Array> {
  send: (message: Uint8Array) => Promise<void>
}

export function sessionPipe (session: MessageChannel): Pipe {
  const acks = ackCollector()
  void (async () => {
    for await (const message of session) acks.feed(message)
    acks.fail(new Error('the session ended'))
  })().catch((err: Error) => { acks.fail(err) })
  return { write: async (bytes) => session.send(bytes), ack: acks.next }
}

export function serveSession (session: MessageChannel): void {
  const feed = receiver(ack => { void session.send(ack).catch(() => {}) })
  void (async () => { for await (const message of session) feed(message) })().catch(() => {})
}
