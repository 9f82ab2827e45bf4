import { AbstractMultiaddrConnection } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import type { AbortOptions, Logger, MultiaddrConnection } from '@libp2p/interface'
import type { AbstractMultiaddrConnectionInit, SendResult } from '@libp2p/utils'
import type { UDXStream } from 'udx-native'
import { assertLivenessTiming, PathLostError } from './liveness.js'
import type { LivenessWatch, PathCadence } from './liveness.js'
import { HeldBack, multistreamOpening, NOISE_PROTOCOL } from './noise-first.js'

export interface UdxConnectionInit extends Omit<AbstractMultiaddrConnectionInit, 'log'> {
  stream: UDXStream
  /** bytes already read off the stream before the connection took it over */
  firstChunk?: Uint8Array
  log: Logger
  closeTimeoutMs: number
  /** aborts the connection when its remote falls silent; absent: udx's own timeouts alone */
  liveness?: LivenessWatch
  /** both ends agreed in HELLO/ACCEPT to start with Noise (see noise-first.ts) */
  noiseFirst?: boolean
}

/** What the transport offers of one of its connections: udx's own view of the path under it. */
export interface UdxPath {
  /** udx's smoothed RTT from acknowledged data, ms; 0 before the first sample */
  readonly rttMs: number
  /** the stream's keepalive and liveness limit from now on (see liveness.ts, rules 2 and 5) */
  setCadence: (cadence: PathCadence) => void
}

/** A libp2p MultiaddrConnection over one udx stream; noise and yamux run on top of it like on TCP. */
class UdxMultiaddrConnection extends AbstractMultiaddrConnection implements UdxPath {
  private readonly stream: UDXStream
  private readonly closeTimeoutMs: number
  private readonly liveness?: LivenessWatch
  /** datagrams read in this turn of the event loop, handed up together */
  private reads: Uint8Array[] = []
  /** noise first: the multistream-select bytes our upgrader writes, which stay here */
  private heldBack?: HeldBack
  /** noise first, dialer: the listener's echo, handed to our upgrader once its proposal is held back */
  private echo?: Uint8Array

  constructor (init: UdxConnectionInit) {
    super(init)
    this.stream = init.stream
    this.closeTimeoutMs = init.closeTimeoutMs
    this.liveness = init.liveness
    if (init.noiseFirst === true) {
      const opening = multistreamOpening(NOISE_PROTOCOL)
      this.heldBack = new HeldBack(opening)
      // the listener's upgrader reads the proposal the dialer did not send
      if (init.direction === 'inbound') this.onData(opening)
      else this.echo = opening
    }
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
      this.abort(new PathLostError(`no packet from the remote for ${silentMs} ms: it is gone, or the path to it is`))
    })
    if (unwatch != null) this.stream.once('close', unwatch)
  }

  get rttMs (): number {
    return this.stream.rtt
  }

  setCadence (cadence: PathCadence): void {
    assertLivenessTiming(cadence.keepAliveMs, cadence.deadAfterMs)
    if (this.stream.destroyed) return
    this.stream.setKeepalive(cadence.keepAliveMs)
    this.liveness?.setDeadAfter(this.stream, cadence.deadAfterMs)
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
    for (const buf of data) {
      const rest = this.holdBack(buf)
      if (rest === undefined) return { sentBytes: data.byteLength, canSendMore: false }
      if (rest.byteLength > 0) canSendMore = this.stream.write(rest)
    }
    return { sentBytes: data.byteLength, canSendMore }
  }

  /** noise first: what of `buf` goes on the wire; undefined once the connection was aborted for a mismatch */
  private holdBack (buf: Uint8Array): Uint8Array | undefined {
    if (this.heldBack == null || this.heldBack.done) return buf
    let rest: Uint8Array
    try {
      rest = this.heldBack.take(buf)
    } catch (err) {
      this.abort(err as Error)
      return undefined
    }
    const echo = this.echo
    if (this.heldBack.done && echo != null) {
      this.echo = undefined
      // after this write returns, as an answer from the wire would come
      queueMicrotask(() => { this.onData(echo) })
    }
    return rest
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

export function toMultiaddrConnection (init: UdxConnectionInit): MultiaddrConnection & UdxPath {
  return new UdxMultiaddrConnection(init)
}
