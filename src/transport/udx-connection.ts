import { AbstractMultiaddrConnection } from '@libp2p/utils'
import type { AbortOptions, Logger, MultiaddrConnection } from '@libp2p/interface'
import type { AbstractMultiaddrConnectionInit, SendResult } from '@libp2p/utils'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { UDXStream } from 'udx-native'
import type { LivenessWatch } from './liveness.js'

interface UdxConnectionInit extends Omit<AbstractMultiaddrConnectionInit, 'log'> {
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

  constructor (init: UdxConnectionInit) {
    super(init)
    this.stream = init.stream
    this.closeTimeoutMs = init.closeTimeoutMs
    if (init.firstChunk != null) this.onData(init.firstChunk)
    this.stream.on('data', (buf: Uint8Array) => { this.onData(buf) })
    this.stream.on('error', (err: Error) => {
      this.log('udx stream error - %e', err)
      this.abort(err)
    })
    // the remote ended its side; like TCP without half-open, the whole connection is done
    this.stream.once('end', () => { this.onTransportClosed() })
    this.stream.once('close', () => { this.onTransportClosed() })
    this.stream.on('drain', () => { this.safeDispatchEvent('drain') })
    const unwatch = init.liveness?.watch(this.stream, (silentMs) => {
      this.log('no packet from %a for %d ms - aborting', this.remoteAddr, silentMs)
      this.abort(new Error(`no packet from the remote for ${silentMs} ms: it is gone, or the path to it is`))
    })
    if (unwatch != null) this.stream.once('close', unwatch)
  }

  sendData (data: Uint8ArrayList): SendResult {
    let sentBytes = 0
    let canSendMore = true
    for (const buf of data) {
      sentBytes += buf.byteLength
      canSendMore = this.stream.write(buf)
      if (!canSendMore) break
    }
    return { sentBytes, canSendMore }
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
