import type { Connection, Stream } from '@libp2p/interface'
import type { Path } from '../core/path.js'
import { isRelayed } from '../core/relay-address.js'
import { BadFrameError, encodeFrame, FrameDecoder } from './frames.js'
import type { Frame } from './frames.js'

export const SESSION_PROTOCOL = '/natmesh/session/1.0.0'

export interface CarrierHandlers {
  frame: (frame: Frame, carrier: Carrier) => void
  closed: (carrier: Carrier, err?: Error) => void
}

/**
 * One libp2p stream that carries a session's frames over one path (relayed or direct). A session moves
 * from carrier to carrier; a carrier never outlives its stream.
 */
export class Carrier {
  readonly stream: Stream
  readonly connection: Connection
  readonly path: Path
  private readonly decoder: FrameDecoder
  private handlers?: CarrierHandlers
  /** frames that arrived before a session took the carrier (during set-up) */
  private readonly early: Frame[] = []
  private waiter?: { resolve: (frame: Frame) => void, reject: (err: Error) => void }
  private closedWith?: { err?: Error }

  constructor (stream: Stream, connection: Connection, maxPayloadLength: number) {
    this.stream = stream
    this.connection = connection
    this.path = isRelayed(connection.remoteAddr) ? 'relay' : 'direct'
    this.decoder = new FrameDecoder(maxPayloadLength)
    stream.addEventListener('message', (evt) => {
      let frames: Frame[]
      try {
        frames = this.decoder.push(evt.data)
      } catch (err) {
        // a malformed frame poisons the byte stream after it: drop the carrier, the session resumes elsewhere
        this.abort(err instanceof Error ? err : new BadFrameError(String(err)))
        return
      }
      for (const frame of frames) this.deliver(frame)
    })
    // a remote that ends its side during set-up will never send the frame we wait for
    stream.addEventListener('remoteCloseWrite', () => {
      this.waiter?.reject(new Error('remote closed the stream during session set-up'))
      this.waiter = undefined
    })
    stream.addEventListener('close', (evt) => {
      this.closedWith = { err: evt.error }
      this.waiter?.reject(evt.error ?? new Error('stream closed during session set-up'))
      this.waiter = undefined
      this.handlers?.closed(this, evt.error)
    })
  }

  /** ended by an error (aborted, reset, dead path): frames in flight on it are lost */
  get lost (): boolean {
    return this.closedWith?.err != null
  }

  /** still able to carry frames both ways: neither closed nor closing */
  get open (): boolean {
    return this.closedWith == null && this.stream.status === 'open' && this.stream.writeStatus === 'writable'
  }

  /** Reads the first frame of the set-up exchange. */
  async nextFrame (signal: AbortSignal): Promise<Frame> {
    const early = this.early.shift()
    if (early != null) return early
    if (this.closedWith != null) throw this.closedWith.err ?? new Error('stream closed during session set-up')
    return new Promise((resolve, reject) => {
      const onAbort = (): void => { this.waiter = undefined; reject(new Error('session set-up timed out')) }
      signal.addEventListener('abort', onAbort, { once: true })
      this.waiter = {
        resolve: (frame) => { signal.removeEventListener('abort', onAbort); resolve(frame) },
        reject: (err) => { signal.removeEventListener('abort', onAbort); reject(err) }
      }
    })
  }

  /** Hands the carrier to a session: every later frame goes to it, starting with any that already arrived. */
  attach (handlers: CarrierHandlers): void {
    this.handlers = handlers
    for (const frame of this.early.splice(0)) handlers.frame(frame, this)
    if (this.closedWith != null) handlers.closed(this, this.closedWith.err)
  }

  /** Writes a frame; false means the stream wants a `drain` before more. */
  write (frame: Frame): boolean {
    // a carrier being closed or replaced takes no more frames; the session resends on its successor
    if (!this.open) return true
    let ok = true
    for (const part of encodeFrame(frame)) ok = this.stream.send(part)
    return ok
  }

  async drained (): Promise<void> {
    if (!this.stream.writableNeedsDrain) return
    await new Promise<void>(resolve => {
      const done = (): void => {
        this.stream.removeEventListener('drain', done)
        this.stream.removeEventListener('close', done)
        resolve()
      }
      this.stream.addEventListener('drain', done)
      this.stream.addEventListener('close', done)
    })
  }

  abort (err: Error): void {
    if (this.stream.status === 'open') this.stream.abort(err)
  }

  /**
   * Finishes gracefully: closes our side, then waits for the remote to close its side too. The remote closes
   * only after it has read everything we wrote, so once this resolves our last frame has arrived.
   */
  async close (timeoutMs = 5000): Promise<void> {
    const closed = this.closedWith != null
      ? Promise.resolve()
      : new Promise<void>(resolve => { this.stream.addEventListener('close', () => { resolve() }, { once: true }) })
    const signal = AbortSignal.timeout(timeoutMs)
    await this.stream.close({ signal }).catch((err: Error) => { this.abort(err) })
    await Promise.race([closed, new Promise<void>(resolve => { signal.addEventListener('abort', () => { resolve() }, { once: true }) })])
    if (this.closedWith == null) this.abort(new Error(`remote did not close the session stream within ${timeoutMs} ms`))
  }

  private deliver (frame: Frame): void {
    if (this.handlers != null) {
      this.handlers.frame(frame, this)
    } else if (this.waiter != null) {
      const waiter = this.waiter
      this.waiter = undefined
      waiter.resolve(frame)
    } else {
      this.early.push(frame)
    }
  }
}
