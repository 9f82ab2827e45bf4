import { describe, expect, it } from 'vitest'
import { refreshDelay } from '../../src/peer/gateway-link.js'

describe('reservation refresh delay', () => {
  it('renews a long reservation the configured margin before it expires', () => {
    expect(refreshDelay(2 * 60 * 60_000, 5 * 60_000)).toBe(2 * 60 * 60_000 - 5 * 60_000)
  })

  it('renews a reservation shorter than twice the margin halfway through, never more often than every second', () => {
    expect(refreshDelay(8000, 5 * 60_000)).toBe(4000)
    expect(refreshDelay(1500, 5 * 60_000)).toBe(1000)
  })
})
