/** At most `perMinute` uses per key in any sliding minute: birthday punches are costly, so each peer gets a few. */
export class AttemptBudget {
  private readonly uses = new Map<string, number[]>()

  constructor (private readonly perMinute: number, private readonly now: () => number = Date.now) {}

  /** whether `key` may start an attempt now (without using one) */
  available (key: string): boolean {
    return this.recent(key).length < this.perMinute
  }

  /** uses one attempt; false when the minute's budget is spent */
  take (key: string): boolean {
    const recent = this.recent(key)
    if (recent.length >= this.perMinute) return false
    recent.push(this.now())
    this.uses.set(key, recent)
    return true
  }

  private recent (key: string): number[] {
    const cutoff = this.now() - 60_000
    const recent = (this.uses.get(key) ?? []).filter(at => at > cutoff)
    if (recent.length === 0) this.uses.delete(key)
    else this.uses.set(key, recent)
    return recent
  }
}
