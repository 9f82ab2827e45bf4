/** What the liveness rules read of a udx stream: counters libudx keeps in C, read without a call into it. */
export interface StreamCounters {
  readonly packetsReceived: number
}

/**
 * Whether the remote end of one udx stream is still there. udx itself takes 13 s and more to give up on a dead
 * remote (its retransmission timer backs off), and never on an idle stream, whose keepalives it does not
 * retransmit; a gateway or peer that vanished without closing (power loss, SIGKILL, a cut path) would keep
 * its circuits and sessions stalled that long. The rules, checked every few hundred ms with `now` passed in:
 *
 * 1. Any packet from the remote (data, ACK or keepalive answer) proves it alive. Those are sent by the remote's
 *    udx, in C, so a stream whose data queues behind megabytes, or whose reader is paused, still answers.
 * 2. The stream's own keepalive (`setKeepalive`) makes the remote answer at least once per keepalive interval,
 *    so a live remote is never silent for long; with `deadAfterMs` at three keepalive intervals or more, one
 *    lost probe or answer is no alarm.
 * 3. No packet for `deadAfterMs`: the remote, or the path to it, is gone.
 * 4. A check that runs late (this process was blocked) judges nothing: packets that arrived meanwhile are still
 *    unread in the socket, and are read before the next check.
 * 5. A new cadence (keepalive and `deadAfterMs` of one stream, see `PathCadence`) counts silence from when it was
 *    set: under the old, slower one the remote had no reason to answer more often.
 */
/**
 * Why a connection was aborted when its path is gone: silent past the liveness limit, or (by the peer) running over
 * a network it has left. Whoever holds another way to the remote (a relay) may try for a new direct path.
 */
export class PathLostError extends Error {
  override name = 'PathLostError'
}

/** Rule 2 as a constraint on the settings: throws unless `deadAfterMs` is 0 (off) or at least three keepalive intervals. */
export function assertLivenessTiming (keepAliveMs: number, deadAfterMs: number): void {
  if (deadAfterMs !== 0 && deadAfterMs < 3 * keepAliveMs) {
    throw new Error(`deadAfterMs (${deadAfterMs}) must be at least three keepalive intervals (keepAliveMs ${keepAliveMs}), or 0`)
  }
}

/**
 * How often one udx stream probes its remote when idle, and how long a silence it takes for death. A peer keeps
 * its gateway links on a slow one while nothing depends on them, and on a fast one while traffic does.
 */
export interface PathCadence {
  keepAliveMs: number
  deadAfterMs: number
}

/**
 * The two cadences natmesh's links run at. `active`: a path traffic depends on, given up after 3 lost probes or
 * answers in a row (2.5 s), so sessions resume elsewhere and `gateway-lost` comes fast. `idle`: a peer's link
 * to a gateway while nothing runs through it; 10 s is well inside NAT UDP timeouts (30 s for a Linux mapping
 * that saw no answer, 2 min once it did; WireGuard's keepalive is 25 s), and a gateway, which leaves probing to
 * its peers, takes 30 s of silence for death. At 10,000 idle peers a 5 s probe cost their gateway 5.5 % of a core.
 */
export const PATH_CADENCE = {
  active: { keepAliveMs: 750, deadAfterMs: 2500 },
  idle: { keepAliveMs: 10_000, deadAfterMs: 30_000 }
} as const satisfies Record<string, PathCadence>

export class PathLiveness {
  private lastPackets: number
  private heardAt: number

  constructor (private deadAfterMs: number, counters: StreamCounters, now: number) {
    this.lastPackets = counters.packetsReceived
    this.heardAt = now
  }

  /** rule 5 */
  setDeadAfter (deadAfterMs: number, now: number): void {
    this.deadAfterMs = deadAfterMs
    this.heardAt = now
  }

  /** @returns how long the remote has been silent when rule 3 holds, else undefined */
  check (counters: StreamCounters, now: number, onTime: boolean): number | undefined {
    if (counters.packetsReceived !== this.lastPackets) {
      this.lastPackets = counters.packetsReceived
      this.heardAt = now
      return undefined
    }
    const silentMs = now - this.heardAt
    return onTime && silentMs >= this.deadAfterMs ? silentMs : undefined
  }
}

export interface LivenessWatchInit {
  /** silence after which a stream's remote is taken for dead */
  deadAfterMs: number
  /** how often the streams are checked */
  checkMs: number
  /** default Date.now */
  now?: () => number
}

interface Watched {
  liveness: PathLiveness
  onDead: (silentMs: number) => void
}

/** Checks every watched stream on one shared timer (a gateway holds thousands); rule 4 is judged per tick. */
export class LivenessWatch {
  private readonly watched = new Map<StreamCounters, Watched>()
  private readonly now: () => number
  private timer?: NodeJS.Timeout
  private lastTick = 0

  constructor (private readonly init: LivenessWatchInit) {
    this.now = init.now ?? Date.now
  }

  /** Calls `onDead` once, when the stream's remote has been silent too long; the returned function stops watching. */
  watch (stream: StreamCounters, onDead: (silentMs: number) => void): () => void {
    this.watched.set(stream, { liveness: new PathLiveness(this.init.deadAfterMs, stream, this.now()), onDead })
    if (this.timer == null) {
      this.lastTick = this.now()
      this.timer = setInterval(() => { this.tick() }, this.init.checkMs)
      this.timer.unref()
    }
    return () => { this.unwatch(stream) }
  }

  /** A watched stream's own silence limit from now on (rule 5); the watch's checks keep their interval. */
  setDeadAfter (stream: StreamCounters, deadAfterMs: number): void {
    this.watched.get(stream)?.liveness.setDeadAfter(deadAfterMs, this.now())
  }

  get size (): number {
    return this.watched.size
  }

  private unwatch (stream: StreamCounters): void {
    this.watched.delete(stream)
    if (this.watched.size === 0) {
      clearInterval(this.timer)
      this.timer = undefined
    }
  }

  private tick (): void {
    const now = this.now()
    const onTime = now - this.lastTick < 2 * this.init.checkMs
    this.lastTick = now
    for (const [stream, { liveness, onDead }] of this.watched) {
      const silentMs = liveness.check(stream, now, onTime)
      if (silentMs === undefined) continue
      this.unwatch(stream)
      onDead(silentMs)
    }
  }
}
