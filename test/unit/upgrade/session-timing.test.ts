/**
 * The numbered rules of src/upgrade/session-timing.ts, each with synthetic instants: the rules take `now`, and
 * where a timer drives them, vitest's fake interval/timeout clock stands in for waiting.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { FrameType } from '../../../src/upgrade/frames.js'
import { Backoff } from '../../../src/core/backoff.js'
import { CLOSED_MEMORY_MS, RecentlyClosed, RemoteSilence, RESUME_BACKOFF } from '../../../src/upgrade/session-timing.js'
import type { Session } from '../../../src/upgrade/session.js'
import type { SessionManager } from '../../../src/upgrade/session-manager.js'
import { link, manager, RawCarrier, stubNode } from './harness.js'

describe('session time rules, pure', () => {
  const DEAD_AFTER = 3000

  it('rule 2: a frame restarts the silence', () => {
    const silence = new RemoteSilence(DEAD_AFTER, 0)
    silence.heard(2500)
    expect(silence.check(5000, true)).toBeUndefined()
    expect(silence.check(5501, true)).toBe(3001)
  })

  it('rule 3: while the session is not reading, silence does not count', () => {
    const silence = new RemoteSilence(DEAD_AFTER, 0)
    expect(silence.check(10_000, false)).toBeUndefined()
    expect(silence.check(12_000, true)).toBeUndefined()
    expect(silence.check(13_001, true)).toBe(3001)
  })

  it('rule 4: more than deadAfter of silence is a dead carrier, exactly deadAfter is not yet', () => {
    const silence = new RemoteSilence(DEAD_AFTER, 1000)
    expect(silence.check(4000, true)).toBeUndefined()
    expect(silence.check(4001, true)).toBe(3001)
  })

  it('rule 6: resume attempts back off from 100 ms, doubling, to at most 2 s', () => {
    const retry = new Backoff(RESUME_BACKOFF)
    expect(Array.from({ length: 7 }, () => retry.next())).toEqual([100, 200, 400, 800, 1600, 2000, 2000])
  })

  it('rule 8: a cleanly closed session is remembered for CLOSED_MEMORY_MS, then forgotten', () => {
    const closed = new RecentlyClosed()
    closed.add('p/1', 1000)
    expect(closed.has('p/1', 1000 + CLOSED_MEMORY_MS)).toBe(true)
    expect(closed.has('p/1', 1001 + CLOSED_MEMORY_MS)).toBe(false)
    expect(closed.has('p/2', 1000)).toBe(false)
  })
})

describe('session time rules, through a SessionManager (fake clock)', () => {
  const stops: SessionManager[] = []
  afterEach(async () => {
    vi.useRealTimers()
    for (const m of stops.splice(0)) await m.stop()
  })

  async function established (options: { heartbeatMs: number, deadAfterHeartbeats: number, gracePeriodMs?: number }): Promise<{ raw: RawCarrier, clock: { t: number }, session: Session }> {
    const clock = { t: 0 }
    const [a, b] = [await stubNode(), await stubNode()]
    const l = link(a, b, 'direct')
    const responder = manager(b, () => [l.atB], { now: () => clock.t, options })
    stops.push(responder)
    await responder.start()
    let session: Session | undefined
    responder.handle('/t/1.0.0', (s) => { session = s })
    const raw = await RawCarrier.open(l.atA)
    raw.write({ type: FrameType.OPEN, sessionId: new Uint8Array(16), bootId: new Uint8Array(8), protocol: '/t/1.0.0' })
    expect(await raw.next()).toMatchObject({ type: FrameType.ACCEPT })
    // the ACK that follows every attach
    expect(await raw.next()).toMatchObject({ type: FrameType.ACK })
    return { raw, clock, session: session as Session }
  }

  it('rules 1 and 4: a heartbeat ACK every heartbeatMs; a carrier silent past deadAfterHeartbeats heartbeats is aborted', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const { raw, clock } = await established({ heartbeatMs: 1000, deadAfterHeartbeats: 3 })
    for (const t of [1000, 2000, 3000]) {
      clock.t = t
      vi.advanceTimersByTime(1000)
      expect(await raw.next()).toEqual({ type: FrameType.ACK, ack: 0n })
    }
    // the remote wrote nothing since the attach at t = 0
    clock.t = 3001
    vi.advanceTimersByTime(1000)
    await raw.closedNow()
  })

  it('rule 2: a frame from the remote keeps the carrier alive', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    const { raw, clock } = await established({ heartbeatMs: 1000, deadAfterHeartbeats: 3 })
    clock.t = 2500
    raw.write({ type: FrameType.DATA, seq: 0n, ack: 0n, payload: new Uint8Array([1]) })
    // its ACK shows the frame reached the session at 2500
    expect(await raw.next()).toEqual({ type: FrameType.ACK, ack: 1n })
    clock.t = 5000
    vi.advanceTimersByTime(1000)
    expect(await raw.next()).toEqual({ type: FrameType.ACK, ack: 1n })
    expect(raw.closed).toBe(false)
  })

  it('rule 5: a session without a carrier fails with PATH_LOST after gracePeriodMs, not before', async () => {
    const { raw, session } = await established({ heartbeatMs: 1000, deadAfterHeartbeats: 3, gracePeriodMs: 60_000 })
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setInterval', 'clearInterval', 'Date'] })
    let lostAt: number | undefined
    session.addEventListener('resuming', () => { lostAt = Date.now() })
    raw.stream.abort(new Error('path gone'))
    // the in-memory stream delivers the reset a few fake milliseconds later
    while (lostAt === undefined) await vi.advanceTimersByTimeAsync(1)
    expect(session.state).toBe('resuming')
    await vi.advanceTimersByTimeAsync(lostAt + 60_000 - 1 - Date.now())
    expect(session.state).toBe('resuming')
    vi.advanceTimersByTime(1)
    expect(session.state).toBe('failed')
    await expect(session.finished()).rejects.toMatchObject({ code: 'PATH_LOST' })
  })
})
