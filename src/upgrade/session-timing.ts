/**
 * The session layer's rules that depend on time. Each takes `now` (ms) from its caller, so a test states
 * instants instead of waiting for them:
 *
 * 1. Every `heartbeatMs` a session sends an ACK on its current carrier, even while nothing else flows and the
 *    application is not reading: a live remote is never silent for long.
 * 2. Any frame from the remote, on any of the session's carriers, proves it alive; so does attaching a carrier.
 * 3. While the session has stopped reading (the application is behind), the remote's frames wait unread: that
 *    silence proves nothing and is not counted.
 * 4. A current carrier that brought nothing for more than `deadAfterHeartbeats` heartbeats is dead: it is
 *    aborted and the resume avoids its connection (transport timeouts take 13 s and more to notice).
 * 5. A session without a carrier for `gracePeriodMs` fails with PATH_LOST.
 * 6. A failed resume attempt is retried after 100 ms, doubling up to 2 s (core/backoff.ts computes the delays).
 * 7. A stream's set-up (OPEN or RESUME, then ACCEPT) that takes longer than 10 s is given up.
 * 8. A session that closed cleanly is remembered for 2 minutes, so a late RESUME for it learns that it ended
 *    instead of "unknown session"; a failed one is not remembered.
 * 9. A move from the relay to a direct connection that fails (the RESUME lost or refused on a lossy path) is
 *    tried again with rule 6's delays, for as long as the session is on the relay and a direct connection to its
 *    peer is open: a session never stays on the relay next to a working direct path.
 */
import type { BackoffInit } from '../core/backoff.js'

/** rule 7 */
export const HANDSHAKE_TIMEOUT_MS = 10_000
/** rule 8 */
export const CLOSED_MEMORY_MS = 120_000
/** rule 6 */
export const RESUME_BACKOFF: BackoffInit = { initialMs: 100, maxMs: 2000 }

/** Rules 2 to 4: whether the remote on a session's current carrier has been silent too long. */
export class RemoteSilence {
  private heardAt: number

  constructor (private readonly deadAfterMs: number, now: number) {
    this.heardAt = now
  }

  /** rule 2 */
  heard (now: number): void {
    this.heardAt = now
  }

  /** At a heartbeat: how long the remote has been silent when rule 4 holds, else undefined. */
  check (now: number, reading: boolean): number | undefined {
    // rule 3
    if (!reading) this.heardAt = now
    const silentMs = now - this.heardAt
    return silentMs > this.deadAfterMs ? silentMs : undefined
  }
}

/** Rule 8: keys of sessions that closed cleanly, for `CLOSED_MEMORY_MS`. */
export class RecentlyClosed {
  private readonly closedAt = new Map<string, number>()

  add (key: string, now: number): void {
    this.closedAt.set(key, now)
    for (const [k, at] of this.closedAt) if (now - at > CLOSED_MEMORY_MS) this.closedAt.delete(k)
  }

  has (key: string, now: number): boolean {
    const at = this.closedAt.get(key)
    return at != null && now - at <= CLOSED_MEMORY_MS
  }
}
