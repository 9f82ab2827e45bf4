import { AbstractMultiaddrConnection } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import type { AbortOptions, Logger, MultiaddrConnection } from '@libp2p/interface'
import type { AbstractMultiaddrConnectionInit, SendResult } from '@libp2p/utils'
import type { UDXStream } from 'udx-native'
import type { LivenessWatch } from './liveness.js'

export interface UdxConnectionInit extends Omit<AbstractMultiaddrConnectionInit, 'log'> {
  stream: UDXStream
  /** bytes already read off the stream before the connection took it over */
  firstChunk?: Uint8Array
  log: Logger
  closeTimeoutMs: number
  /** aborts the connection when its remote falls silent; absent: udx's own timeouts alone */
  liveness?: LivenessWatch
}

/** A libp2p MultiaddrConnection over one udx stream; noise and yamux run on top of it like on TCP. */
class UdxMultiaddrConnection extends AbstractMultiaddrConnection {
  private readonly stream: UDXStream
  private readonly closeTimeoutMs: number
  /** datagrams read in this turn of the event loop, handed up together */
  private reads: Uint8Array[] = []

  constructor (init: UdxConnectionInit) {
    super(init)
    this.stream = init.stream
    this.closeTimeoutMs = init.closeTimeoutMs
    if (init.firstChunk != null) this.onData(init.firstChunk)
    // udx emits one event per datagram (about 1.4 KB): decrypting and demultiplexing each on its own costs
    // more than the bytes do, so what arrives together goes up together
    this.stream.on('data', (buf: Uint8Array) => {
      if (this.reads.push(buf) === 1) queueMicrotask(this.flushReads)
    })
    this.stream.on('error', (err: Error) => {
      this.log('udx stream error - %e', err)
      this.flushReads()
      this.abort(err)
    })
    // the remote ended its side; like TCP without half-open, the whole connection is done
    this.stream.once('end', () => { this.flushReads(); this.onTransportClosed() })
    this.stream.once('close', () => { this.flushReads(); this.onTransportClosed() })
    this.stream.on('drain', () => { this.safeDispatchEvent('drain') })
    const unwatch = init.liveness?.watch(this.stream, (silentMs) => {
      this.log('no packet from %a for %d ms - aborting', this.remoteAddr, silentMs)
      this.abort(new Error(`no packet from the remote for ${silentMs} ms: it is gone, or the path to it is`))
    })
    if (unwatch != null) this.stream.once('close', unwatch)
  }

  private readonly flushReads = (): void => {
    if (this.reads.length === 0) return
    const reads = this.reads
    this.reads = []
    this.onData(reads.length === 1 ? reads[0]! : new Uint8ArrayList(...reads))
  }

  sendData (data: Uint8ArrayList): SendResult {
    // udx queues whatever it is given; false only says its queue is past the high-water mark. Taking the whole
    // list (bounded by the caller's own backpressure) spares re-queueing the rest on every write.
    let canSendMore = true
    for (const buf of data) canSendMore = this.stream.write(buf)
    return { sentBytes: data.byteLength, canSendMore }
  }

  async sendClose (options?: AbortOptions): Promise<void> {
    if (this.stream.destroyed) return
    const closed = new Promise<void>(resolve => this.stream.once('close', () => { resolve() }))
    this.stream.end()
    // a peer that vanished never acks our FIN; don't let close() hang on it
    const timeout = AbortSignal.timeout(this.closeTimeoutMs)
    const signal = options?.signal != null ? AbortSignal.any([options.signal, timeout]) : timeout
    await new Promise<void>(resolve => {
      signal.addEventListener('abort', () => { this.stream.destroy(); resolve() }, { once: true })
      void closed.then(resolve)
    })
  }

  sendReset (): void {
    this.stream.destroy()
  }

  sendPause (): void {
    this.stream.pause()
  }

  sendResume (): void {
    this.stream.resume()
  }
}

export function toMultiaddrConnection (init: UdxConnectionInit): MultiaddrConnection {
  return new UdxMultiaddrConnection(init)
}
