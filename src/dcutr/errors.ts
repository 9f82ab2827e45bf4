import { NatmeshError } from '../core/errors.js'

/**
 * Why a hole punch was skipped or failed, after hyperdht's lib/errors.js: one error class whose `code` names the
 * cause, so events, the status API and lab verdicts match on codes rather than on message prefixes.
 *
 * Skips (nothing worth trying, and not worth a retry):
 * - NO_UDP_PATH: one side has no public UDP overlay address (none observed by a gateway: UDP blocked, not up
 *   yet, or reached over TCP only), or the remote's CONNECT offered none we can punch to.
 * - NO_DCUTR: the remote does not speak DCUtR (a libp2p peer without it).
 * - BOTH_SYMMETRIC: both NATs pick a new port per destination: no punch can meet, the relay carries the pair.
 * - NO_BIRTHDAY: a birthday punch is needed, but one side has it turned off or its attempt budget for the other
 *   spent (the responder did not echo the probe token).
 * - ALREADY_DIRECT, IN_PROGRESS: a direct connection exists already, or a punch to this peer is running.
 *
 * Failures:
 * - BUDGET_SPENT: the birthday attempt budget for this peer was used up between the agreement and the punch.
 * - TIMEOUT: no direct connection (or no answer on the exchange) within the attempt's time limit.
 * - CUT_SHORT: the attempt ended before the punch could finish because the relayed connection closed or this
 *   peer stopped; the message says which, and after how long.
 * - RELAY_CLOSED: the relayed connection was closed before the next attempt could start.
 * - BAD_MESSAGE: the remote sent a DCUtR message we cannot read, or one out of order.
 * - EXCHANGE_FAILED: the DCUtR stream broke off (reset or closed by the remote).
 * - DIAL_FAILED: the direct dials failed, or came back relayed.
 */
export type HolePunchCode =
  | 'NO_UDP_PATH' | 'NO_DCUTR' | 'BOTH_SYMMETRIC' | 'NO_BIRTHDAY' | 'ALREADY_DIRECT' | 'IN_PROGRESS'
  | 'BUDGET_SPENT' | 'TIMEOUT' | 'CUT_SHORT' | 'RELAY_CLOSED' | 'BAD_MESSAGE' | 'EXCHANGE_FAILED' | 'DIAL_FAILED'

const SKIPS: ReadonlySet<HolePunchCode> = new Set(['NO_UDP_PATH', 'NO_DCUTR', 'BOTH_SYMMETRIC', 'NO_BIRTHDAY', 'ALREADY_DIRECT', 'IN_PROGRESS'])

export class HolePunchError extends NatmeshError<HolePunchCode> {
  override name = 'HolePunchError'

  /** the exchange decided against any punch: not a failure, and not worth a retry */
  get skipped (): boolean {
    return SKIPS.has(this.code)
  }
}

export const NO_UDP_PATH_LOCAL = 'this peer has no UDP path (no UDP overlay address observed by a gateway: UDP blocked or not up yet)'
export const NO_UDP_PATH_REMOTE = 'the remote peer has no UDP path (it offered no UDP overlay address: UDP blocked or reached over TCP only)'

/** The abort reason for a relayed connection closing, or this peer stopping, while an attempt runs. */
export function cutShortReason (why: 'the relayed connection closed' | 'this peer is stopping' | 'a newer relayed connection replaced this one'): HolePunchError {
  return new HolePunchError('CUT_SHORT', why)
}

/**
 * Whatever an attempt threw, as a HolePunchError. `signal` is the attempt's: when it was cut short, that is the
 * real cause whatever the error looked like (a reset stream, a failed dial), reported with how long the attempt
 * really ran; when its time limit fired, the error is a TIMEOUT.
 */
export function asHolePunchError (err: unknown, signal: AbortSignal, elapsedMs: number): HolePunchError {
  if (err instanceof Error && err.name === 'UnsupportedProtocolError') return new HolePunchError('NO_DCUTR', 'the remote peer does not speak DCUtR')
  const reason: unknown = signal.aborted ? signal.reason : undefined
  if (reason instanceof HolePunchError && reason.code === 'CUT_SHORT') {
    return new HolePunchError('CUT_SHORT', `cut short after ${elapsedMs} ms: ${reason.message} before the punch finished`)
  }
  if (err instanceof HolePunchError) return err
  const message = err instanceof Error ? err.message : String(err)
  if (reason instanceof Error && reason.name === 'TimeoutError') return new HolePunchError('TIMEOUT', message)
  return new HolePunchError('EXCHANGE_FAILED', message)
}
