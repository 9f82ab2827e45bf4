import { TypedEventEmitter } from 'main-event'
import type { Logger, PeerId } from '@libp2p/interface'
import type { Path } from '../core/path.js'
import { Backoff } from '../core/backoff.js'
import type { Carrier } from './carrier.js'
import { BadFrameError, ErrorCode, FrameType } from './frames.js'
import type { Frame } from './frames.js'
import { AckSchedule } from './ack-schedule.js'
import { MessageQueue } from './message-queue.js'
import type { Outgoing } from './send-buffer.js'
import { Sender } from './sender.js'
import { SessionError } from './session-options.js'
import type { SessionEvents, SessionOptions, SessionState, SessionStats } from './session-options.js'
import { messageDuplex } from './session-duplex.js'
import type { MessageDuplex } from './session-duplex.js'
import { isLive, opening, publicState, transition } from './session-state.js'
import type { Lifecycle, LifecycleEvent } from './session-state.js'
import { RemoteSilence, RESUME_BACKOFF } from './session-timing.js'

export { SessionError, sessionDefaults } from './session-options.js'
export type { SessionEvents, SessionOptions, SessionState, SessionStats } from './session-options.js'

export interface SessionInit {
  id: Uint8Array
  peer: PeerId
  protocol: string
  role: 'initiator' | 'responder'
  options: SessionOptions
  log: Logger
  /** initiator only: find a path to the peer and resume there; throws SessionError for unrecoverable cases */
  reconnect?: (session: Session) => Promise<void>
  /** the clock of the rules in session-timing.ts; default Date.now */
  now?: () => number
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
  private readonly now: () => number

  private readonly sender: Sender
  private readonly inbound = new MessageQueue()
  private nextExpected = 0n
  /** where the session is in its life: every change goes through `apply` (see session-state.ts) */
  private lifecycle: Lifecycle<Carrier> = opening
  /** every carrier not yet closed, the current one and those being replaced, whose frames are still read */
  private readonly carriers = new Set<Carrier>()
  /** flow control, not lifecycle: the application is behind, so the carriers are not read */
  private paused = false
  private readonly silence: RemoteSilence
  /** the connection of a carrier found dead by its silence; resumes avoid it */
  deadConnectionId?: string
  private readonly acks: AckSchedule
  private heartbeat?: NodeJS.Timeout
  private graceTimer?: NodeJS.Timeout
  private closeWaiters: Array<(err?: Error) => void> = []
  private readonly ended = Promise.withResolvers<void>()
  private readonly counters = { migrations: 0, bytesViaRelay: 0, bytesViaDirect: 0, messagesSent: 0, messagesReceived: 0, duplicatesDropped: 0 }

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
    this.now = init.now ?? Date.now
    this.acks = new AckSchedule(init.options.ackDelayMs, () => { this.sendAck() })
    this.silence = new RemoteSilence(init.options.deadAfterHeartbeats * init.options.heartbeatMs, this.now())
    this.sender = new Sender({ ...init.options, ack: () => this.nextExpected, transmitted: () => { this.acks.settled() }, delivered: this.delivered })
    this.inbound.onConsumed = () => { this.maybeResumeReading() }
    // nobody has to await finished(): a failure is also reported through the iterator and 'closed'
    this.ended.promise.catch(() => {})
    this.heartbeat = setInterval(() => { this.beat() }, init.options.heartbeatMs)
    this.heartbeat.unref()
  }

  get state (): SessionState {
    return publicState(this.lifecycle)
  }

  get path (): Path | 'none' {
    return this.current?.open === true ? this.current.path : 'none'
  }

  /** the carrier frames go out on, while attached */
  private get current (): Carrier | undefined {
    return this.lifecycle.name === 'attached' ? this.lifecycle.carrier : undefined
  }

  private get localClosed (): boolean {
    return isLive(this.lifecycle) ? this.lifecycle.ends.local : true
  }

  private get remoteClosed (): boolean {
    return isLive(this.lifecycle) ? this.lifecycle.ends.remote : true
  }

  /** The one place the lifecycle changes; false when the event does not apply to the current state. */
  private apply (event: LifecycleEvent<Carrier>): boolean {
    const next = transition(this.lifecycle, event)
    if (next === this.lifecycle) return false
    this.log.trace('session %s %s -> %s on %s', this.id, this.lifecycle.name, next.name, event.type)
    this.lifecycle = next
    return true
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
    while (!this.sender.buffer.hasRoomFor(message.byteLength)) {
      await this.sender.buffer.waitForChange(options.signal)
      this.assertWritable()
    }
    this.sender.buffer.push(message)
    this.counters.messagesSent++
    void this.sender.pump(() => this.current)
  }

  /** Received messages, in order, each exactly once. Ends when the remote closes; throws if the session fails. */
  [Symbol.asyncIterator] (): AsyncIterator<Uint8Array> {
    return this.inbound[Symbol.asyncIterator]()
  }

  /** An it-pipe friendly duplex of byte chunks; chunks larger than maxMessageBytes are split. */
  toDuplex (): MessageDuplex {
    return messageDuplex(this, this.options.maxMessageBytes)
  }

  /** Finishes sending: resolves when the remote has acknowledged every message and the close itself. */
  async close (): Promise<void> {
    if (this.lifecycle.name === 'closed') return
    if (this.lifecycle.name === 'failed') throw this.lifecycle.error
    if (this.apply({ type: 'local-close' })) {
      this.sender.buffer.push(null)
      void this.sender.pump(() => this.current)
    }
    if (this.sender.buffer.length === 0) return
    await new Promise<void>((resolve, reject) => {
      this.closeWaiters.push((err) => { err == null ? resolve() : reject(err) })
    })
  }

  /** Ends the session at once; unsent and unread messages are dropped, the remote is told. */
  abort (err: Error = new SessionError('ABORTED', 'session aborted')): void {
    this.fail(err)
  }

  stats (): SessionStats {
    const { migrations, ...traffic } = this.counters
    return { id: this.id, peer: this.peer.toString(), protocol: this.protocol, role: this.role, state: this.state, path: this.path, migrations, framesResent: this.sender.resent, ...traffic }
  }

  /**
   * Puts the session on a new carrier. `remoteExpected` is the next seq the remote expects (from RESUME or
   * ACCEPT): everything from there that is still unacknowledged goes out again on the new carrier.
   */
  attach (carrier: Carrier, remoteExpected: bigint): void {
    if (!isLive(this.lifecycle)) {
      void carrier.close()
      return
    }
    let from: bigint
    try {
      // the resend point first: frames that arrived during set-up are handed over below, and the acks in them
      // make the session transmit on this carrier at once, which must start where the remote expects
      from = this.sender.rewind(remoteExpected)
    } catch (err) {
      carrier.abort(err as Error)
      return
    }
    const previous = this.current
    const resuming = this.lifecycle.name === 'resuming'
    this.carriers.add(carrier)
    this.apply({ type: 'attach', carrier })
    this.silence.heard(this.now())
    // a resume after a loss is a path change too
    if (previous !== carrier && (previous != null || resuming)) this.counters.migrations++
    if (previous != null && previous !== carrier) {
      // stop writing to the old carrier; frames still in flight on it are read until the remote closes it too
      void previous.close()
    }
    clearTimeout(this.graceTimer)
    this.graceTimer = undefined
    if (this.paused) carrier.stream.pause()
    carrier.attach({ frame: (frame, via) => { this.onFrame(frame, via) }, closed: (via, err) => { this.onCarrierClosed(via, err) } })
    this.log('session %s on %s path (%d migrations, resending from %s)', this.id, carrier.path, this.counters.migrations, from)
    this.safeDispatchEvent('path', { detail: { path: carrier.path, migrations: this.counters.migrations } })
    this.sendAck()
    void this.sender.pump(() => this.current)
    this.maybeFinish()
  }

  /** Fails the session with an error from the remote or from the session layer (peer restarted, no path). */
  fail (err: Error): void {
    if (!this.apply({ type: 'fail', error: err })) return
    this.log('session %s failed - %s', this.id, err.message)
    this.teardown()
    for (const carrier of this.carriers) {
      // tell the remote why, so it fails with the reason instead of waiting out its grace period
      carrier.write({ type: FrameType.ERROR, code: err instanceof SessionError && err.code === 'PEER_RESTARTED' ? ErrorCode.PEER_RESTARTED : ErrorCode.CLOSED, message: err.message })
      carrier.abort(err)
    }
    this.inbound.end(err)
    this.sender.buffer.wake()
    for (const waiter of this.closeWaiters.splice(0)) waiter(err)
    this.ended.reject(err)
    this.safeDispatchEvent('closed', { detail: { error: err } })
  }

  private assertWritable (): void {
    if (this.lifecycle.name === 'failed') throw this.lifecycle.error
    if (this.localClosed) throw new SessionError('ABORTED', 'session is closed for sending')
  }

  private onFrame (frame: Frame, carrier: Carrier): void {
    // frames still in flight when the session ended change nothing
    if (!isLive(this.lifecycle)) return
    // any frame, on any of the session's carriers, shows the remote is alive
    this.silence.heard(this.now())
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
    this.sender.acknowledge(ack)
    this.maybeFinish()
    void this.sender.pump(() => this.current)
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
      this.apply({ type: 'remote-close' })
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
    this.acks.received(payload.byteLength)
  }

  private maybeResumeReading (): void {
    if (!this.paused || this.inbound.bytes > this.options.maxInboundBytes / 2) return
    this.paused = false
    for (const c of this.carriers) if (c.open) c.stream.resume()
  }

  /** Rules 1 to 4 of session-timing.ts: keeps the current carrier alive, and drops it once the remote is silent on it too long. */
  private beat (): void {
    const carrier = this.current
    const silentMs = this.silence.check(this.now(), !this.paused)
    if (carrier?.open === true && silentMs !== undefined) {
      // heartbeats stopped, so the whole connection is likely gone (the remote died, or a NAT or relay on the
      // path): the resume must not pick it again before its transport notices
      this.deadConnectionId = carrier.connection.id
      carrier.abort(new Error(`no frame from the remote for ${silentMs} ms`))
      return
    }
    this.sendAck()
  }

  private sendAck (): void {
    this.acks.settled()
    if (this.current?.open === true) this.current.write({ type: FrameType.ACK, ack: this.nextExpected })
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
    const reason = err?.message ?? 'stream closed'
    if (!this.apply({ type: 'carrier-lost', carrier, reason })) return
    this.log('session %s lost its %s path (%s); resuming', this.id, carrier.path, reason)
    this.safeDispatchEvent('resuming', { detail: { reason } })
    this.graceTimer = setTimeout(() => {
      this.fail(new SessionError('PATH_LOST', `no path to ${this.peer.toString()} for ${this.options.gracePeriodMs} ms (last: ${reason}); session ${this.id} failed with ${this.sender.buffer.length} message(s) unacknowledged`))
    }, this.options.gracePeriodMs)
    if (this.reconnectFn != null) void this.reconnectLoop(this.reconnectFn)
  }

  private async reconnectLoop (reconnect: (session: Session) => Promise<void>): Promise<void> {
    const retry = new Backoff(RESUME_BACKOFF)
    while (this.lifecycle.name === 'resuming') {
      try {
        await reconnect(this)
        return
      } catch (err) {
        if (err instanceof SessionError && err.code === 'CLOSED' && this.localClosed && this.remoteClosed) {
          // the remote finished the session (it only does after receiving our CLOSE) before our last ACK reached it
          this.sender.acknowledge(this.sender.buffer.nextSeq)
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
    this.log.trace('session %s maybeFinish localClosed=%s unacked=%d remoteClosed=%s', this.id, this.localClosed, this.sender.buffer.length, this.remoteClosed)
    if (!this.localClosed || this.sender.buffer.length > 0) return
    for (const waiter of this.closeWaiters.splice(0)) waiter()
    if (!this.apply({ type: 'drained' })) return
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
    this.acks.settled()
  }
}
