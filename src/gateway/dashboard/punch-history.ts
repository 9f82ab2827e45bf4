import type { NatType } from '../../nat/types.js'
import type { MappingKind } from '../../nat/mapping-profile.js'
import type { PunchOutcome, PunchReportFromPeer, PunchStrategyKind } from '../../punch-report/wire.js'

/** One hole-punch report as the dashboard shows it; times are ISO strings */
export interface PunchRecord {
  at: string
  /** the peer that reported it */
  peer: string
  remotePeer?: string
  outcome: PunchOutcome
  strategy?: PunchStrategyKind
  attempts: number
  durationMs?: number
  /** the overlay the report came over */
  transport: string
}

export interface PunchMinute {
  /** start of the minute */
  minute: string
  success: number
  failure: number
  skipped: number
}

/** What a peer last said about its own NAT in a punch report */
export interface ReportedNat {
  mapping?: MappingKind
  natType?: NatType
  reportedAt: string
}

export interface PunchHistoryInit {
  /** reports kept for the list (default 200) */
  maxRecent?: number
  /** minutes of per-minute counts kept (default 60) */
  minutes?: number
  /** peers and peer pairs remembered (default 10000 each) */
  maxPeers?: number
}

const MINUTE_MS = 60_000

/**
 * The hole-punch reports peers sent, for the dashboard: the latest ones, counts per minute, what each peer says of
 * its NAT, and the last outcome per peer pair. All of it bounded; the metrics keep the all-time totals.
 */
export class PunchHistory {
  private readonly init: Required<PunchHistoryInit>
  private readonly recentReports: PunchRecord[] = []
  /** minute start (ms) → counts, oldest first */
  private readonly perMinute = new Map<number, PunchMinute>()
  /** least recently reported first */
  private readonly nats = new Map<string, ReportedNat>()
  private readonly pairs = new Map<string, PunchRecord>()
  readonly totals: Record<PunchOutcome, number> = { success: 0, failure: 0, skipped: 0 }

  constructor (init: PunchHistoryInit = {}) {
    this.init = { maxRecent: 200, minutes: 60, maxPeers: 10_000, ...init }
  }

  record (reporter: string, report: PunchReportFromPeer, now = Date.now()): void {
    const record: PunchRecord = {
      at: new Date(now).toISOString(),
      peer: reporter,
      ...(report.remotePeer != null ? { remotePeer: report.remotePeer } : {}),
      outcome: report.outcome,
      ...(report.strategy != null ? { strategy: report.strategy } : {}),
      attempts: report.attempts,
      ...(report.durationMs != null ? { durationMs: report.durationMs } : {}),
      transport: report.transport
    }
    this.totals[report.outcome]++
    this.recentReports.push(record)
    if (this.recentReports.length > this.init.maxRecent) this.recentReports.shift()

    const minute = Math.floor(now / MINUTE_MS) * MINUTE_MS
    const counts = this.perMinute.get(minute) ?? { minute: new Date(minute).toISOString(), success: 0, failure: 0, skipped: 0 }
    counts[report.outcome]++
    this.perMinute.set(minute, counts)
    this.expireMinutes(now)

    if (report.mapping != null || report.natType != null) {
      remember(this.nats, reporter, {
        ...(report.mapping != null ? { mapping: report.mapping } : {}),
        ...(report.natType != null ? { natType: report.natType } : {}),
        reportedAt: record.at
      }, this.init.maxPeers)
    }
    if (report.remotePeer != null) remember(this.pairs, pairKey(reporter, report.remotePeer), record, this.init.maxPeers)
  }

  /** newest first */
  recent (): PunchRecord[] {
    return [...this.recentReports].reverse()
  }

  /** one entry per minute of the last `minutes`, oldest first, zeros included */
  timeline (now = Date.now()): PunchMinute[] {
    this.expireMinutes(now)
    const last = Math.floor(now / MINUTE_MS) * MINUTE_MS
    return Array.from({ length: this.init.minutes }, (_, i) => {
      const minute = last - (this.init.minutes - 1 - i) * MINUTE_MS
      return this.perMinute.get(minute) ?? { minute: new Date(minute).toISOString(), success: 0, failure: 0, skipped: 0 }
    })
  }

  natOf (peer: string): ReportedNat | undefined {
    return this.nats.get(peer)
  }

  /** the last report either peer of each pair sent about the other */
  lastPerPair (): PunchRecord[] {
    return [...this.pairs.values()]
  }

  private expireMinutes (now: number): void {
    const cutoff = now - this.init.minutes * MINUTE_MS
    for (const minute of this.perMinute.keys()) {
      if (minute > cutoff) break
      this.perMinute.delete(minute)
    }
  }
}

/** the same key whichever of the two reported */
export function pairKey (a: string, b: string): string {
  return a < b ? `${a} ${b}` : `${b} ${a}`
}

function remember<V> (map: Map<string, V>, key: string, value: V, max: number): void {
  map.delete(key)
  map.set(key, value)
  if (map.size > max) map.delete(map.keys().next().value as string)
}
