import type { Connection, Libp2p, Logger, PeerId, Stream } from '@libp2p/interface'
import { isRelayed } from '../core/relay-address.js'
import { Carrier, SESSION_PROTOCOL } from './carrier.js'
import { BOOT_ID_LENGTH, ErrorCode, FrameType, SESSION_ID_LENGTH } from './frames.js'
import type { Frame } from './frames.js'
import { Session, SessionError, sessionDefaults } from './session.js'
import type { SessionOptions } from './session.js'
import { Backoff } from '../core/backoff.js'
import { HANDSHAKE_TIMEOUT_MS, RecentlyClosed, RESUME_BACKOFF } from './session-timing.js'

export type SessionHandler = (session: Session) => void | Promise<void>

export interface SessionManagerInit {
  node: Libp2p
  log: Logger
  options?: Partial<SessionOptions>
  /** opens a connection to a peer that has none (through the gateways); used to resume after path loss */
  dial: (peer: PeerId, signal: AbortSignal) => Promise<Connection>
  /** the connection a new carrier should use: the direct one when there is one; never `excludeId` */
  bestConnection: (peer: PeerId, excludeId?: string) => Connection | undefined
  /** the clock of the rules in session-timing.ts; default Date.now */
  now?: () => number
}

export interface SessionTotals {
  opened: number
  migrations: number
  bytesViaRelay: number
  bytesViaDirect: number
}

function addSession (totals: SessionTotals, session: Session): void {
  const stats = session.stats()
  totals.opened++
  totals.migrations += stats.migrations
  totals.bytesViaRelay += stats.bytesViaRelay
  totals.bytesViaDirect += stats.bytesViaDirect
}

/**
 * Owns a peer's sessions: opens and accepts them, moves initiator sessions onto a direct connection when one
 * appears, and answers RESUME after a path loss. Each process has a random boot id; a RESUME or OPEN carrying
 * a new boot id for a peer means that peer restarted, and its old sessions fail at once with a clear error.
 */
export class SessionManager {
  private readonly init: SessionManagerInit
  private readonly options: SessionOptions
  private readonly log: Logger
  private readonly bootId = crypto.getRandomValues(new Uint8Array(BOOT_ID_LENGTH))
  private readonly sessions = new Map<string, { session: Session, remoteBootId?: string }>()
  private readonly recentlyClosed = new RecentlyClosed()
  private readonly now: () => number
  private readonly handlers = new Map<string, SessionHandler>()
  private readonly switching = new Set<string>()
  /** what sessions that have ended moved, so totals() never goes down when one closes */
  private readonly ended: SessionTotals = { opened: 0, migrations: 0, bytesViaRelay: 0, bytesViaDirect: 0 }
  private started = false

  constructor (init: SessionManagerInit) {
    this.init = init
    this.options = { ...sessionDefaults, ...init.options }
    this.log = init.log
    this.now = init.now ?? Date.now
  }

  async start (): Promise<void> {
    if (this.started) return
    this.started = true
    await this.init.node.handle(SESSION_PROTOCOL, (stream, connection) => { void this.onIncoming(stream, connection) }, {
      runOnLimitedConnection: true,
      maxInboundStreams: 1024
    })
    this.init.node.addEventListener('connection:open', this.onConnectionOpen)
  }

  async stop (): Promise<void> {
    if (!this.started) return
    this.started = false
    this.init.node.removeEventListener('connection:open', this.onConnectionOpen)
    for (const { session } of this.sessions.values()) session.abort(new SessionError('ABORTED', 'the local peer is shutting down'))
    this.sessions.clear()
    await this.init.node.unhandle(SESSION_PROTOCOL)
  }

  handle (protocol: string, handler: SessionHandler): void {
    this.handlers.set(protocol, handler)
  }

  unhandle (protocol: string): void {
    this.handlers.delete(protocol)
  }

  list (): Session[] {
    return [...this.sessions.values()].map(entry => entry.session)
  }

  /** Counters over every session since start, open and ended: for metrics that only ever go up. */
  totals (): SessionTotals {
    const totals = { ...this.ended }
    for (const session of this.list()) addSession(totals, session)
    return totals
  }

  /** Opens a session on `connection` (relayed or direct); it follows the best path from then on. */
  async open (connection: Connection, protocol: string): Promise<Session> {
    const id = crypto.getRandomValues(new Uint8Array(SESSION_ID_LENGTH))
    const carrier = await this.openCarrier(connection)
    try {
      carrier.write({ type: FrameType.OPEN, sessionId: id, bootId: this.bootId, protocol })
      const reply = await carrier.nextFrame(AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS))
      const remoteExpected = expectAccept(reply)
      const session = this.track(new Session({
        id,
        peer: connection.remotePeer,
        protocol,
        role: 'initiator',
        options: this.options,
        log: this.log,
        reconnect: async (s) => { await this.resume(s) },
        now: this.now
      }))
      session.attach(carrier, remoteExpected)
      void this.maybeMigrate(session)
      return session
    } catch (err) {
      carrier.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }

  private track (session: Session): Session {
    const key = sessionKey(session.peer, session.id)
    this.sessions.set(key, { session })
    session.addEventListener('closed', (evt) => {
      if (this.sessions.delete(key)) addSession(this.ended, session)
      // only a clean close is worth remembering: a RESUME for a failed session should hear "unknown"
      if (evt.detail.error == null) this.recentlyClosed.add(key, this.now())
    })
    return session
  }

  private async openCarrier (connection: Connection): Promise<Carrier> {
    const stream = await connection.newStream(SESSION_PROTOCOL, { runOnLimitedConnection: true, signal: AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS) })
    return new Carrier(stream, connection, this.options.maxMessageBytes)
  }

  /** Initiator: a new carrier on `connection`, RESUME, and the session continues there. */
  private async resumeOn (session: Session, connection: Connection): Promise<void> {
    const carrier = await this.openCarrier(connection)
    try {
      carrier.write({ type: FrameType.RESUME, sessionId: session.idBytes, bootId: this.bootId, nextExpected: session.expectedSeq })
      const reply = await carrier.nextFrame(AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS))
      session.attach(carrier, expectAccept(reply))
    } catch (err) {
      carrier.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }

  /** Initiator after a path loss: the best open connection, or a new one through the gateways. */
  private async resume (session: Session): Promise<void> {
    const connection = this.init.bestConnection(session.peer, session.deadConnectionId) ?? await this.init.dial(session.peer, AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS))
    await this.resumeOn(session, connection)
    // a direct connection that opened while this resume was under way found the session on no path, and left it
    if (isRelayed(connection.remoteAddr)) void this.maybeMigrate(session)
  }

  private readonly onConnectionOpen = (evt: CustomEvent<Connection>): void => {
    const connection = evt.detail
    if (isRelayed(connection.remoteAddr)) return
    for (const { session } of this.sessions.values()) {
      if (session.role === 'initiator' && session.peer.equals(connection.remotePeer)) void this.maybeMigrate(session)
    }
  }

  /**
   * Moves an initiator session from a relayed carrier to a direct connection, if there is one; a move that fails
   * is tried again (session-timing.ts rule 9), `retries` counting the delays so far.
   */
  private async maybeMigrate (session: Session, retries?: Backoff): Promise<void> {
    if (session.path !== 'relay' || this.switching.has(session.id) || !this.sessions.has(sessionKey(session.peer, session.id))) return
    const direct = this.init.bestConnection(session.peer)
    if (direct == null || isRelayed(direct.remoteAddr)) return
    this.switching.add(session.id)
    let failure: unknown
    try {
      await this.resumeOn(session, direct)
    } catch (err) {
      failure = err
    } finally {
      this.switching.delete(session.id)
    }
    if (failure === undefined) return
    // the relayed carrier is still there; the session stays on it until the next try
    const backoff = retries ?? new Backoff(RESUME_BACKOFF)
    const delay = backoff.next()
    this.log.error('session %s could not move to the direct path, trying again in %d ms - %s', session.id, delay, failure instanceof Error ? failure.message : String(failure))
    const onClosed = (): void => { clearTimeout(timer) }
    const timer = setTimeout(() => {
      session.removeEventListener('closed', onClosed)
      void this.maybeMigrate(session, backoff)
    }, delay)
    session.addEventListener('closed', onClosed, { once: true })
  }

  private async onIncoming (stream: Stream, connection: Connection): Promise<void> {
    const carrier = new Carrier(stream, connection, this.options.maxMessageBytes)
    let first: Frame
    try {
      first = await carrier.nextFrame(AbortSignal.timeout(HANDSHAKE_TIMEOUT_MS))
    } catch (err) {
      this.log('session set-up from %p failed - %s', connection.remotePeer, err instanceof Error ? err.message : String(err))
      carrier.abort(err instanceof Error ? err : new Error(String(err)))
      return
    }
    const peer = connection.remotePeer
    if (first.type === FrameType.OPEN || first.type === FrameType.RESUME) this.noticeBootId(peer, hex(first.bootId))
    if (first.type === FrameType.OPEN) {
      const handler = this.handlers.get(first.protocol)
      if (handler == null) {
        await refuse(carrier, ErrorCode.NO_HANDLER, `no session handler for ${first.protocol}`)
        return
      }
      if (this.sessions.has(sessionKey(peer, hex(first.sessionId)))) {
        await refuse(carrier, ErrorCode.BAD_FRAME, 'session id already in use')
        return
      }
      const session = this.track(new Session({ id: first.sessionId, peer, protocol: first.protocol, role: 'responder', options: this.options, log: this.log, now: this.now }))
      const entry = this.sessions.get(sessionKey(peer, session.id))
      if (entry != null) entry.remoteBootId = hex(first.bootId)
      carrier.write({ type: FrameType.ACCEPT, nextExpected: session.expectedSeq })
      session.attach(carrier, 0n)
      try {
        await handler(session)
      } catch (err) {
        session.abort(err instanceof Error ? err : new Error(String(err)))
      }
      return
    }
    if (first.type === FrameType.RESUME) {
      const key = sessionKey(peer, hex(first.sessionId))
      const entry = this.sessions.get(key)
      if (entry == null) {
        const closed = this.recentlyClosed.has(key, this.now())
        await refuse(carrier, closed ? ErrorCode.CLOSED : ErrorCode.UNKNOWN_SESSION, closed ? 'session already closed' : 'unknown session: the peer restarted or the session expired')
        return
      }
      carrier.write({ type: FrameType.ACCEPT, nextExpected: entry.session.expectedSeq })
      entry.session.attach(carrier, first.nextExpected)
      return
    }
    await refuse(carrier, ErrorCode.BAD_FRAME, `a session stream must start with OPEN or RESUME, not ${FrameType[first.type]}`)
  }

  /** A peer that shows up with a new boot id restarted: the sessions it had with us cannot continue. */
  private noticeBootId (peer: PeerId, bootId: string): void {
    for (const entry of this.sessions.values()) {
      if (entry.session.role === 'responder' && entry.session.peer.equals(peer) && entry.remoteBootId != null && entry.remoteBootId !== bootId) {
        entry.session.fail(new SessionError('PEER_RESTARTED', `peer ${peer.toString()} restarted; session ${entry.session.id} cannot continue`))
      }
    }
  }
}

function expectAccept (frame: Frame): bigint {
  if (frame.type === FrameType.ACCEPT) return frame.nextExpected
  if (frame.type === FrameType.ERROR) {
    const code = frame.code === ErrorCode.UNKNOWN_SESSION ? 'UNKNOWN_SESSION' : frame.code === ErrorCode.PEER_RESTARTED ? 'PEER_RESTARTED' : frame.code === ErrorCode.CLOSED ? 'CLOSED' : 'PROTOCOL'
    throw new SessionError(code, `remote refused the session: ${frame.message}`)
  }
  throw new SessionError('PROTOCOL', `expected ACCEPT, got ${FrameType[frame.type]}`)
}

async function refuse (carrier: Carrier, code: ErrorCode, message: string): Promise<void> {
  carrier.write({ type: FrameType.ERROR, code, message })
  await carrier.close()
}

/** sessions are looked up by peer and id: an id another peer picked (or guessed) never reaches this one's */
function sessionKey (peer: PeerId, id: string): string {
  return `${peer.toString()}/${id}`
}

function hex (bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex')
}

