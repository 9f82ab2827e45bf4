import type { Path } from '../core/path.js'

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
