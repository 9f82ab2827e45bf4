import { describe, expect, it } from 'vitest'
import { Backoff } from '../../src/core/backoff.js'

function delays (backoff: Backoff, count: number): number[] {
  return Array.from({ length: count }, () => backoff.next())
}

describe('Backoff', () => {
  it('rule 1: doubles from the initial delay up to the maximum', () => {
    // the coturn supervisor's defaults
    expect(delays(new Backoff({ initialMs: 1000, maxMs: 30_000 }), 7)).toEqual([1000, 2000, 4000, 8000, 16_000, 30_000, 30_000])
  })

  it('rule 1: grows by another factor when one is given', () => {
    expect(delays(new Backoff({ initialMs: 30, maxMs: 100, factor: 1.5 }), 4)).toEqual([30, 45, 67.5, 100])
  })

  it('rule 2: jitter draws from the upper half of each delay, rounded', () => {
    const low = new Backoff({ initialMs: 500, maxMs: 30_000, jitter: true, random: () => 0 })
    const high = new Backoff({ initialMs: 500, maxMs: 30_000, jitter: true, random: () => 0.999999 })
    expect(delays(low, 4)).toEqual([250, 500, 1000, 2000])
    expect(delays(high, 4)).toEqual([500, 1000, 2000, 4000])
  })

  it('rule 3: reset starts over at the initial delay', () => {
    const backoff = new Backoff({ initialMs: 2000, maxMs: 60_000 })
    expect(delays(backoff, 3)).toEqual([2000, 4000, 8000])
    backoff.reset()
    expect(backoff.next()).toBe(2000)
  })
})
