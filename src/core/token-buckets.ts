export interface TokenBucketsInit {
  /** tokens added per second; 0 turns limiting off */
  ratePerSecond: number
  /** bucket size: how many requests a quiet source may send at once */
  burst: number
  /** buckets kept at most; when full, buckets that have refilled are forgotten first (default 65536) */
  maxSources?: number
  now?: () => number
}

interface Bucket { tokens: number, updatedMs: number }

/**
 * A token bucket per source IP. Memory stays bounded: a source whose bucket has refilled is no different from
 * one never seen, so such buckets are dropped whenever the table is full.
 */
export class TokenBuckets {
  private readonly buckets = new Map<string, Bucket>()
  private readonly ratePerMs: number
  private readonly burst: number
  private readonly maxSources: number
  private readonly now: () => number

  constructor (init: TokenBucketsInit) {
    this.ratePerMs = init.ratePerSecond / 1000
    this.burst = init.burst
    this.maxSources = init.maxSources ?? 65_536
    this.now = init.now ?? (() => performance.now())
  }

  /** Takes one token for `source`; false when its bucket is empty */
  take (source: string): boolean {
    if (this.ratePerMs === 0) return true
    const now = this.now()
    let bucket = this.buckets.get(source)
    if (bucket == null) {
      if (this.buckets.size >= this.maxSources) this.forgetRefilled(now)
      // still full: every tracked source is busy, so a newcomer is refused rather than evicting someone's state
      if (this.buckets.size >= this.maxSources) return false
      bucket = { tokens: this.burst, updatedMs: now }
      this.buckets.set(source, bucket)
    } else {
      bucket.tokens = Math.min(this.burst, bucket.tokens + (now - bucket.updatedMs) * this.ratePerMs)
      bucket.updatedMs = now
    }
    if (bucket.tokens < 1) return false
    bucket.tokens -= 1
    return true
  }

  get size (): number {
    return this.buckets.size
  }

  private forgetRefilled (now: number): void {
    for (const [source, bucket] of this.buckets) {
      if (bucket.tokens + (now - bucket.updatedMs) * this.ratePerMs >= this.burst) this.buckets.delete(source)
    }
  }
}
