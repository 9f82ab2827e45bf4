/** Why a STUN transaction ended without an answer */
export type StunTransactionErrorCode =
  /** every retransmission went unanswered (RFC 8489 §6.2.1) */
  | 'ERR_STUN_TIMEOUT'
  /** the caller's signal fired, or the engine was closed */
  | 'ERR_STUN_ABORTED'
  /** the socket could not send the request (no route, unresolvable host, closed socket) */
  | 'ERR_STUN_SEND'

export class StunTransactionError extends Error {
  readonly code: StunTransactionErrorCode

  constructor (code: StunTransactionErrorCode, message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'StunTransactionError'
    this.code = code
  }
}

/** true for a transaction that got no answer, for whatever reason: what NAT tests and health probes count as silence */
export function isUnanswered (err: unknown): err is StunTransactionError {
  return err instanceof StunTransactionError
}
