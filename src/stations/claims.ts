import { NatmeshError } from '../core/errors.js'
import type { StationRecord } from './record.js'

interface Claim { owner: string, seq: number, expiresAt: number }

/** forget lapsed claims once there are this many, so the table can't grow without bound */
const SWEEP_AT = 10_000

/**
 * First come, first served: a gateway binds a station name to the key of the first peer that publishes it and
 * refuses records for that name from any other key until the owner withdraws it or lets it expire. Held in
 * memory like the records themselves: a restarted gateway relearns claims from the owners' republications.
 */
export class StationClaims {
  private readonly claims = new Map<string, Claim>()

  /** @throws {NatmeshError} INVALID_STATION_RECORD when the name is held by another key */
  admit (record: StationRecord, now = Date.now()): void {
    const claim = this.claims.get(record.name)
    if (claim != null && claim.expiresAt > now && claim.owner !== record.peerId) {
      throw new NatmeshError('INVALID_STATION_RECORD', `station ${record.name} is claimed by ${claim.owner}`)
    }
    // an older record of the owner (a late copy) must not shorten or end the claim
    if (claim != null && claim.owner === record.peerId && claim.expiresAt > now && record.seq < claim.seq) return
    if (record.withdrawn) {
      this.claims.delete(record.name)
      return
    }
    this.claims.set(record.name, { owner: record.peerId, seq: record.seq, expiresAt: record.expiresAt })
    if (this.claims.size >= SWEEP_AT) this.sweep(now)
  }

  get size (): number {
    return this.claims.size
  }

  private sweep (now: number): void {
    for (const [name, claim] of this.claims) if (claim.expiresAt <= now) this.claims.delete(name)
  }
}
