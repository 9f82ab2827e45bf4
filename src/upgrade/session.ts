import { TypedEventEmitter } from 'main-event'
import type { Logger, PeerId } from '@libp2p/interface'
import type { Path } from '../core/path.js'
import { Backoff } from '../core/backoff.js'
import type { Carrier } from './carrier.js'
import { BadFrameError, ErrorCode, FrameType } from './frames.js'
import type { Frame } from './frames.js'
import { MessageQueue } from './message-queue.js'
import { SendBuffer } from './send-buffer.js'
import type { Outgoing } from './send-buffer.js'

export interface SessionOptions {
  /** bytes sent but not yet acknowledged before send() waits; default 8 MiB */
  maxUnackedBytes: number
  /** largest message; default 1 MiB */
  maxMessageBytes: number
  /** received bytes the application has not read yet before the session stops reading; default 8 MiB */
  maxInboundBytes: number
  /** how long a session without a path waits for a new one before it fails; default 60 s */
  gracePeriodMs: number
  /** delay before a standalone ACK when no DATA goes back to carry it; default 5 ms */
  ackDelayMs: number
  /**
   * every session sends an ACK at least this often, even while the application is not reading; a carrier that
   * brings nothing for `deadAfterHeartbeats` heartbeats is taken for dead and the session resumes elsewhere
   * (transport timeouts take 13 s and more); default 1 s
   */
  heartbeatMs: number
  /**
   * default 10. Frames queue behind data in the same stream, so on a saturated path a live remote can be
   * silent for seconds; a false alarm costs a resume and a resend, so this errs on the side of patience
   */
  deadAfterHeartbeats: number
  /**
   * bytes in flight (sent, not yet acknowledged) on a direct carrier: bounds how long an ACK or heartbeat can
   * queue behind data; default 2 MiB
   */
  windowBytes: number
  /**
   * the same on a relayed carrier. A relay buffers whatever it is given, so without a small bound a fast sender
   * queues megabytes there and the hole punch, which talks over the same relayed connection, waits behind
   * them; default 512 KiB
   */
  relayWindowBytes: number
}

export const sessionDefaults: SessionOptions = {
  maxUnackedBytes: 8 * 1024 * 1024,
  maxMessageBytes: 1024 * 1024,
  maxInboundBytes: 8 * 1024 * 1024,
  gracePeriodMs: 60_000,
  ackDelayMs: 5,
  heartbeatMs: 1000,
  deadAfterHeartbeats: 10,
  windowBytes: 2 * 1024 * 1024,
  relayWindowBytes: 512 * 1024
}

export type SessionState = 'open' | 'resuming' | 'closed' | 'failed'

export interface SessionStats {
  id: string
  peer: string
  protocol: string
  role: 'initiator' | 'responder'
  state: SessionState
  path: Path | 'none'
  migrations: number
  framesResent: number
  bytesViaRelay: number
  bytesViaDirect: number
  messagesSent: number
  messagesReceived: number
  duplicatesDropped: number
}

export class SessionError extends Error {
  override name = 'SessionError'
  readonly code: 'PATH_LOST' | 'PEER_RESTARTED' | 'UNKNOWN_SESSION' | 'CLOSED' | 'PROTOCOL' | 'ABORTED'
  constructor (code: SessionError['code'], message: string) {
    super(message)
    this.code = code
  }
}

export interface SessionEvents {
  path: CustomEvent<{ path: Path, migrations: number }>
  resuming: CustomEvent<{ reason: string }>
  closed: CustomEvent<{ error?: Error }>
}

export interface SessionInit {
  id: Uint8Array
  peer: PeerId
  protocol: string
  role: 'initiator' | 'responder'
  options: SessionOptions
  log: Logger
  /** initiator only: find a path to the peer and resume there; throws SessionError for unrecoverable cases */
  reconnect?: (session: Session) => Promise<void>
}

/**
 * A message channel to one peer that outlives the paths under it. Messages carry sequence numbers and
 * cumulative acks; unacknowledged ones stay buffered, so when the session moves to another carrier (a direct
 * connection after a hole punch, or any path after a loss) it resends from the remote's next expected message
 * and the receiver drops what it already has: exactly once, in order.
 */
export class Session extends TypedEventEmitter<SessionEvents> {
  readonly id: string
  readonly idBytes: Uint8Array
  readonly peer: PeerId
  readonly protocol: string
  readonly role: 'initiator' | 'responder'
  private readonly options: SessionOptions
  private readonly log: Logger
  private readonly reconnectFn?: (session: Session) => Promise<void>

  private readonly outgoing: SendBuffer
  private readonly inbound = new MessageQueue()
  private nextExpected = 0n
  private transmitSeq = 0n
  private remoteClosed = false
  private localClosed = false
  private current?: Carrier
  private readonly carriers = new Set<Carrier>()
  private paused = false
  /** when the current carrier last brought a frame */
  private lastHeardAt = Date.now()
  /** the connection of a carrier found dead by its silence; resumes avoid it */
  deadConnectionId?: string
  private pumping = false
  private unackedReceived = 0
  private ackTimer?: NodeJS.Timeout
  private heartbeat?: NodeJS.Timeout
  private graceTimer?: NodeJS.Timeout
  private closeWaiters: Array<(err?: Error) => void> = []
  private sessionState: SessionState = 'open'
  private failure?: Error
  private readonly ended = Promise.withResolvers<void>()
  private readonly counters = { migrations: 0, framesResent: 0, bytesViaRelay: 0, bytesViaDirect: 0, messagesSent: 0, messagesReceived: 0, duplicatesDropped: 0 }

  constructor (init: SessionInit) {
    super()
    this.idBytes = init.id
    this.id = Buffer.from(init.id).toString('hex')
    this.peer = init.peer
    this.protocol = init.protocol
    this.role = init.role
    this.options = init.options
    this.log = init.log
    this.reconnectFn = init.reconnect
    this.outgoing = new SendBuffer(init.options.maxUnackedBytes)
    this.inbound.onConsumed = () => { this.maybeResumeReading() }
    // nobody has to await finished(): a failure is also reported through the iterator and 'closed'
    this.ended.promise.catch(() => {})
    this.heartbeat = setInterval(() => { this.beat() }, init.options.heartbeatMs)
    this.heartbeat.unref()
  }

  get state (): SessionState {
    return this.sessionState
  }

  get path (): Path | 'none' {
    return this.current?.open === true ? this.current.path : 'none'
  }

  /** the next message this side expects; what RESUME and ACCEPT tell the other side */
  get expectedSeq (): bigint {
    return this.nextExpected
  }

  /**
   * Queues a message. Resolves once it is buffered for (re)transmission; waits while the unacknowledged
   * buffer is full. The bytes must not be modified afterwards: they are resent as they are after a path change.
   */
  async send (message: Uint8Array, options: { signal?: AbortSignal } = {}): Promise<void> {
    this.assertWritable()
    if (message.byteLength > this.options.maxMessageBytes) {
      throw new RangeError(`message of ${message.byteLength} bytes exceeds maxMessageBytes ${this.options.maxMessageBytes}`)
    }
    while (!this.outgoing.hasRoomFor(message.byteLength)) {
      await this.outgoing.waitForChange(options.signal)
      this.assertWritable()
    }
    this.outgoing.push(message)
    this.counters.messagesSent++
    void this.pump()
  }

  /** Received messages, in order, each exactly once. Ends when the remote closes; throws if the session fails. */
  [Symbol.asyncIterator] (): AsyncIterator<Uint8Array> {
    return this.inbound[Symbol.asyncIterator]()
  }

  /** An it-pipe friendly duplex of byte chunks; chunks larger than maxMessageBytes are split. */
  toDuplex (): { source: AsyncIterable<Uint8Array>, sink: (source: AsyncIterable<Uint8Array | { subarray: () => Uint8Array }>) => Promise<void> } {
    return {
      source: { [Symbol.asyncIterator]: () => this[Symbol.asyncIterator]() },
      sink: async (source) => {
        for await (const chunk of source) {
          const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
          for (let offset = 0; offset < bytes.byteLength; offset += this.options.maxMessageBytes) {
            await this.send(bytes.subarray(offset, offset + this.options.maxMessageBytes))
          }
        }
        await this.close()
      }
    }
  }

  /** Finishes sending: resolves when the remote has acknowledged every message and the close itself. */
  async close (): Promise<void> {
    if (this.sessionState === 'closed') return
    if (this.sessionState === 'failed') throw this.failure ?? new SessionError('ABORTED', 'session failed')
    if (!this.localClosed) {
      this.localClosed = true
      this.outgoing.push(null)
      void this.pump()
    }
    if (this.outgoing.length === 0) return
    await new Promise<void>((resolve, reject) => {
      this.closeWaiters.push((err) => { err == null ? resolve() : reject(err) })
    })
  }

  /** Ends the session at once; unsent and unread messages are dropped, the remote is told. */
  abort (err: Error = new SessionError('ABORTED', 'session aborted')): void {
    this.fail(err)
  }

  stats (): SessionStats {
    return { id: this.id, peer: this.peer.toString(), protocol: this.protocol, role: this.role, state: this.sessionState, path: this.path, ...this.counters }
  }

  /**
   * Puts the session on a new carrier. `remoteExpected` is the next seq the remote expects (from RESUME or
   * ACCEPT): everything from there that is still unacknowledged goes out again on the new carrier.
   */
  attach (carrier: Carrier, remoteExpected: bigint): void {
    if (this.sessionState === 'closed' || this.sessionState === 'failed') {
      void carrier.close()
      return
    }
    if (remoteExpected > this.outgoing.nextSeq) {
      carrier.abort(new BadFrameError(`remote expects seq ${remoteExpected}, but only ${this.outgoing.nextSeq} were sent`))
      return
    }
    const previous = this.current
    // the resend point first: frames that arrived during set-up are handed over below, and the acks in them
    // make the session transmit on this carrier at once, which must start where the remote expects
    this.outgoing.acknowledge(remoteExpected, this.delivered)
    const from = remoteExpected > this.outgoing.firstSeq ? remoteExpected : this.outgoing.firstSeq
    if (this.transmitSeq > from) this.counters.framesResent += Number(this.transmitSeq - from)
    this.transmitSeq = from
    this.carriers.add(carrier)
    this.current = carrier
    this.lastHeardAt = Date.now()
    // a resume after a loss is a path change too
    if (previous !== carrier && (previous != null || this.sessionState === 'resuming')) this.counters.migrations++
    if (previous != null && previous !== carrier) {
      // stop writing to the old carrier; frames still in flight on it are read until the remote closes it too
      void previous.close()
    }
    clearTimeout(this.graceTimer)
    this.graceTimer = undefined
    if (this.sessionState === 'resuming') this.sessionState = 'open'
    if (this.paused) carrier.stream.pause()
    carrier.attach({ frame: (frame, via) => { this.onFrame(frame, via) }, closed: (via, err) => { this.onCarrierClosed(via, err) } })
    this.log('session %s on %s path (%d migrations, resending from %s)', this.id, carrier.path, this.counters.migrations, from)
    this.safeDispatchEvent('path', { detail: { path: carrier.path, migrations: this.counters.migrations } })
    this.sendAck()
    void this.pump()
    this.maybeFinish()
  }

  /** Fails the session with an error from the remote or from the session layer (peer restarted, no path). */
  fail (err: Error): void {
    if (this.sessionState === 'closed' || this.sessionState === 'failed') return
    this.sessionState = 'failed'
    this.failure = err
    this.log('session %s failed - %s', this.id, err.message)
    this.teardown()
    for (const carrier of this.carriers) {
      // tell the remote why, so it fails with the reason instead of waiting out its grace period
      carrier.write({ type: FrameType.ERROR, code: err instanceof SessionError && err.code === 'PEER_RESTARTED' ? ErrorCode.PEER_RESTARTED : ErrorCode.CLOSED, message: err.message })
      carrier.abort(err)
    }
    this.inbound.end(err)
    this.outgoing.wake()
    for (const waiter of this.closeWaiters.splice(0)) waiter(err)
    this.ended.reject(err)
    this.safeDispatchEvent('closed', { detail: { error: err } })
  }

  private assertWritable (): void {
    if (this.sessionState === 'failed') throw this.failure ?? new SessionError('ABORTED', 'session failed')
    if (this.localClosed || this.sessionState === 'closed') throw new SessionError('ABORTED', 'session is closed for sending')
  }

  /** Writes unsent entries to the current carrier, in order, respecting its backpressure. */
  private async pump (): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      for (;;) {
        const carrier = this.current
        if (carrier?.open !== true || this.sessionState === 'failed') return
        if (this.transmitSeq < this.outgoing.firstSeq) this.transmitSeq = this.outgoing.firstSeq
        const entry = this.outgoing.at(this.transmitSeq)
        if (entry == null) return
        // wait for acks (onAck pumps again) rather than pile data up in buffers (the relay's above all)
        const window = carrier.path === 'relay' ? this.options.relayWindowBytes : this.options.windowBytes
        if (this.outgoing.bytesBetween(this.outgoing.firstSeq, this.transmitSeq) >= window) return
        const ok = this.transmit(carrier, entry)
        this.transmitSeq++
        if (!ok) await carrier.drained()
      }
    } finally {
      this.pumping = false
    }
  }

  private transmit (carrier: Carrier, entry: Outgoing): boolean {
    this.clearPendingAck()
    if (entry.payload == null) return carrier.write({ type: FrameType.CLOSE, finalSeq: entry.seq })
    // a resend after a path change is not counted again: the copy on a carrier that was closed in good order (an
    // upgrade to direct) is still read by the remote; only a lost carrier's copy is replaced by the new one
    if (entry.sentOn == null || entry.sentOn.lost) entry.sentOn = carrier
    return carrier.write({ type: FrameType.DATA, seq: entry.seq, ack: this.nextExpected, payload: entry.payload })
  }

  private onFrame (frame: Frame, carrier: Carrier): void {
    // any frame, on any of the session's carriers, shows the remote is alive
    this.lastHeardAt = Date.now()
    if (frame.type !== FrameType.DATA) this.log.trace('session %s got %s %o', this.id, FrameType[frame.type], frame)
    try {
      switch (frame.type) {
        case FrameType.DATA:
          this.onAck(frame.ack)
          this.onData(frame.seq, frame.payload, carrier)
          break
        case FrameType.ACK:
          this.onAck(frame.ack)
          break
        case FrameType.CLOSE:
          this.onData(frame.finalSeq, null, carrier)
          break
        case FrameType.ERROR:
          this.fail(new SessionError(frame.code === ErrorCode.PEER_RESTARTED ? 'PEER_RESTARTED' : 'ABORTED', `remote ended the session: ${frame.message}`))
          break
        default:
          throw new BadFrameError(`unexpected ${FrameType[frame.type]} frame on an established session`)
      }
    } catch (err) {
      // a bad frame costs the carrier, not the session: it resumes on a fresh stream
      this.log('dropping carrier of session %s - %s', this.id, err instanceof Error ? err.message : String(err))
      carrier.abort(err instanceof Error ? err : new BadFrameError(String(err)))
    }
  }

  private onAck (ack: bigint): void {
    if (ack > this.outgoing.nextSeq) throw new BadFrameError(`ack ${ack} is beyond the ${this.outgoing.nextSeq} messages sent`)
    this.outgoing.acknowledge(ack, this.delivered)
    this.maybeFinish()
    void this.pump()
  }

  private onData (seq: bigint, payload: Uint8Array | null, carrier: Carrier): void {
    if (seq < this.nextExpected) {
      this.counters.duplicatesDropped++
      return
    }
    if (seq > this.nextExpected) throw new BadFrameError(`seq ${seq} is ahead of the next expected ${this.nextExpected}`)
    if (this.remoteClosed) throw new BadFrameError(`seq ${seq} after the remote closed`)
    this.nextExpected++
    if (payload == null) {
      this.remoteClosed = true
      this.inbound.end()
      this.sendAck()
      this.maybeFinish()
      return
    }
    this.counters.messagesReceived++
    this.countBytes(carrier, payload.byteLength)
    this.inbound.push(payload)
    if (this.inbound.bytes > this.options.maxInboundBytes && !this.paused) {
      this.paused = true
      for (const c of this.carriers) if (c.open) c.stream.pause()
    }
    this.unackedReceived += payload.byteLength
    if (this.unackedReceived >= 64 * 1024) this.sendAck()
    else this.ackTimer ??= setTimeout(() => { this.sendAck() }, this.options.ackDelayMs)
  }

  private maybeResumeReading (): void {
    if (!this.paused || this.inbound.bytes > this.options.maxInboundBytes / 2) return
    this.paused = false
    for (const c of this.carriers) if (c.open) c.stream.resume()
  }

  /** Keeps the current carrier alive, and drops it when the remote has been silent on it too long. */
  private beat (): void {
    const carrier = this.current
    // while we don't read (the application is behind), the remote's frames wait unread: that is not silence
    if (this.paused) this.lastHeardAt = Date.now()
    if (carrier?.open === true && Date.now() - this.lastHeardAt > this.options.deadAfterHeartbeats * this.options.heartbeatMs) {
      // heartbeats stopped, so the whole connection is likely gone (the remote died, or a NAT or relay on the
      // path): the resume must not pick it again before its transport notices
      this.deadConnectionId = carrier.connection.id
      carrier.abort(new Error(`no frame from the remote for ${Date.now() - this.lastHeardAt} ms`))
      return
    }
    this.sendAck()
  }

  private sendAck (): void {
    this.clearPendingAck()
    if (this.current?.open === true) this.current.write({ type: FrameType.ACK, ack: this.nextExpected })
  }

  private clearPendingAck (): void {
    clearTimeout(this.ackTimer)
    this.ackTimer = undefined
    this.unackedReceived = 0
  }

  /** sent bytes count once the remote acknowledged them, on the path of the copy that got there */
  private readonly delivered = (entry: Outgoing): void => {
    if (entry.payload != null && entry.sentOn != null) this.countBytes(entry.sentOn, entry.payload.byteLength)
  }

  private countBytes (carrier: Carrier, bytes: number): void {
    if (carrier.path === 'relay') this.counters.bytesViaRelay += bytes
    else this.counters.bytesViaDirect += bytes
  }

  private onCarrierClosed (carrier: Carrier, err?: Error): void {
    this.carriers.delete(carrier)
    if (carrier !== this.current) return
    this.current = undefined
    if (this.sessionState !== 'open') return
    const reason = err?.message ?? 'stream closed'
    this.sessionState = 'resuming'
    this.log('session %s lost its %s path (%s); resuming', this.id, carrier.path, reason)
    this.safeDispatchEvent('resuming', { detail: { reason } })
    this.graceTimer = setTimeout(() => {
      this.fail(new SessionError('PATH_LOST', `no path to ${this.peer.toString()} for ${this.options.gracePeriodMs} ms (last: ${reason}); session ${this.id} failed with ${this.outgoing.length} message(s) unacknowledged`))
    }, this.options.gracePeriodMs)
    if (this.reconnectFn != null) void this.reconnectLoop(this.reconnectFn)
  }

  private async reconnectLoop (reconnect: (session: Session) => Promise<void>): Promise<void> {
    const retry = new Backoff({ initialMs: 100, maxMs: 2000 })
    while (this.sessionState === 'resuming') {
      try {
        await reconnect(this)
        return
      } catch (err) {
        if (err instanceof SessionError && err.code === 'CLOSED' && this.localClosed && this.remoteClosed) {
          // the remote finished the session (it only does after receiving our CLOSE) before our last ACK reached it
          this.outgoing.acknowledge(this.outgoing.nextSeq, this.delivered)
          this.maybeFinish()
          return
        }
        if (err instanceof SessionError) {
          this.fail(err)
          return
        }
        this.log('session %s: resume attempt failed - %s', this.id, err instanceof Error ? err.message : String(err))
      }
      await new Promise(resolve => setTimeout(resolve, retry.next()))
    }
  }

  private maybeFinish (): void {
    this.log.trace('session %s maybeFinish localClosed=%s unacked=%d remoteClosed=%s', this.id, this.localClosed, this.outgoing.length, this.remoteClosed)
    if (!this.localClosed || this.outgoing.length > 0) return
    for (const waiter of this.closeWaiters.splice(0)) waiter()
    if (!this.remoteClosed || this.sessionState === 'closed') return
    this.sessionState = 'closed'
    this.teardown()
    // closing the streams gracefully flushes our last ACK, which the remote may still be waiting for
    void Promise.all([...this.carriers].map(async carrier => { await carrier.close() })).then(() => {
      this.ended.resolve()
      this.safeDispatchEvent('closed', { detail: {} })
    })
  }

  /** Resolves when the session has ended cleanly in both directions; rejects if it fails. */
  async finished (): Promise<void> {
    await this.ended.promise
  }

  private teardown (): void {
    clearInterval(this.heartbeat)
    clearTimeout(this.graceTimer)
    this.clearPendingAck()
  }
}
