import { createSocket } from 'node:dgram'
import type { Socket } from 'node:dgram'
import UDX from 'udx-native'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { assertLivenessTiming, LivenessWatch, PathLiveness } from '../../src/transport/liveness.js'
import type { UDXStream } from 'udx-native'

describe('PathLiveness (rules of src/transport/liveness.ts, synthetic instants)', () => {
  const DEAD_AFTER = 2500

  it('rule 1: any packet from the remote restarts the silence', () => {
    const counters = { packetsReceived: 10 }
    const liveness = new PathLiveness(DEAD_AFTER, counters, 0)
    expect(liveness.check(counters, 2000, true)).toBeUndefined()
    counters.packetsReceived = 11
    expect(liveness.check(counters, 2400, true)).toBeUndefined()
    // 4000 ms after the start, but only 1600 ms after the last packet
    expect(liveness.check(counters, 4000, true)).toBeUndefined()
  })

  it('rule 3: no packet for deadAfterMs is a dead remote, and says for how long', () => {
    const counters = { packetsReceived: 3 }
    const liveness = new PathLiveness(DEAD_AFTER, counters, 1000)
    expect(liveness.check(counters, 3499, true)).toBeUndefined()
    expect(liveness.check(counters, 3500, true)).toBe(2500)
  })

  it('rule 5: a new cadence counts silence from when it was set, by its own limit', () => {
    const counters = { packetsReceived: 0 }
    const liveness = new PathLiveness(15_000, counters, 0)
    // 4 s of silence is nothing at 15 s; switched to 2.5 s then, it is no death either: the count starts afresh
    liveness.setDeadAfter(DEAD_AFTER, 4000)
    expect(liveness.check(counters, 4000, true)).toBeUndefined()
    expect(liveness.check(counters, 6499, true)).toBeUndefined()
    expect(liveness.check(counters, 6500, true)).toBe(DEAD_AFTER)
  })

  it('rule 4: a late check judges nothing, the next one on time does', () => {
    const counters = { packetsReceived: 0 }
    const liveness = new PathLiveness(DEAD_AFTER, counters, 0)
    expect(liveness.check(counters, 9000, false)).toBeUndefined()
    expect(liveness.check(counters, 9250, true)).toBe(9250)
  })
})

describe('rule 2: keepalive intervals against deadAfterMs', () => {
  it('takes 0 (off) or at least three keepalive intervals, and refuses less with a clear error', () => {
    expect(() => { assertLivenessTiming(5000, 15_000) }).not.toThrow()
    expect(() => { assertLivenessTiming(5000, 0) }).not.toThrow()
    expect(() => { assertLivenessTiming(5000, 14_999) }).toThrow('deadAfterMs (14999) must be at least three keepalive intervals (keepAliveMs 5000), or 0')
  })
})

describe('LivenessWatch (one shared timer; fake interval clock, synthetic instants)', () => {
  afterEach(() => { vi.useRealTimers() })

  it('declares a silent stream dead once, at deadAfterMs, stops watching it, and stops its timer with the last one', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    let now = 0
    const watch = new LivenessWatch({ deadAfterMs: 1000, checkMs: 100, now: () => now })
    const silent = { packetsReceived: 0 }
    const chatty = { packetsReceived: 0 }
    const dead: number[] = []
    watch.watch(silent, (ms) => { dead.push(ms) })
    watch.watch(chatty, () => { throw new Error('a live stream was declared dead') })
    for (let tick = 1; tick <= 15; tick++) {
      now = tick * 100
      chatty.packetsReceived++
      vi.advanceTimersByTime(100)
    }
    expect(dead).toEqual([1000])
    expect(watch.size).toBe(1)
    expect(vi.getTimerCount()).toBe(1)
  })

  it('rule 4: a tick that comes late (the process was blocked) judges nothing; the next on time does', () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] })
    let now = 0
    const watch = new LivenessWatch({ deadAfterMs: 1000, checkMs: 100, now: () => now })
    const dead: number[] = []
    watch.watch({ packetsReceived: 0 }, (ms) => { dead.push(ms) })
    now = 5000
    vi.advanceTimersByTime(100)
    expect(dead).toEqual([])
    now = 5100
    vi.advanceTimersByTime(100)
    expect(dead).toEqual([5100])
    expect(watch.size).toBe(0)
    expect(vi.getTimerCount()).toBe(0)
  })
})

describe('LivenessWatch on real udx streams (loopback, through a UDP path that can be cut)', () => {
  const cleanups: Array<() => Promise<void> | void> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
  })

  async function bound (): Promise<Socket> {
    const socket = createSocket('udp4')
    await new Promise<void>(resolve => socket.bind(0, '127.0.0.1', resolve))
    cleanups.push(async () => { await new Promise<void>(resolve => socket.close(() => { resolve() })) })
    return socket
  }

  /**
   * Two udx streams whose packets cross a forwarder (one UDP socket facing each side): cutting it is a remote
   * that vanished without a word, like a SIGKILLed gateway or a NAT that dropped its mapping.
   */
  async function pathThroughForwarder (keepAliveMs: number): Promise<{ a: UDXStream, cut: () => void }> {
    const [facingA, facingB] = [await bound(), await bound()]
    const udx = new UDX()
    const [aSocket, bSocket] = [udx.createSocket(), udx.createSocket()]
    aSocket.bind(0, '127.0.0.1')
    bSocket.bind(0, '127.0.0.1')
    let cut = false
    facingA.on('message', (msg) => { if (!cut) facingB.send(msg, bSocket.address()?.port ?? 0, '127.0.0.1') })
    facingB.on('message', (msg) => { if (!cut) facingA.send(msg, aSocket.address()?.port ?? 0, '127.0.0.1') })
    const a = udx.createStream(1)
    const b = udx.createStream(2)
    a.connect(aSocket, 2, facingA.address().port, '127.0.0.1')
    b.connect(bSocket, 1, facingB.address().port, '127.0.0.1')
    for (const stream of [a, b]) {
      stream.setKeepalive(keepAliveMs)
      stream.on('error', () => {})
      stream.on('data', () => {})
    }
    cleanups.push(async () => {
      a.destroy()
      b.destroy()
      await Promise.all([aSocket.close(), bSocket.close()])
    })
    return { a, cut: () => { cut = true } }
  }

  it('keeps an idle stream whose remote answers its keepalives, and gives up on it once the path is cut', async () => {
    const { a, cut } = await pathThroughForwarder(100)
    const watch = new LivenessWatch({ deadAfterMs: 400, checkMs: 50 })
    let declaredDead = false
    const dead = new Promise<number>(resolve => watch.watch(a, (silentMs) => { declaredDead = true; resolve(silentMs) }))

    // idle for six dead-after periods: only the keepalives and their answers cross the path
    await new Promise(resolve => setTimeout(resolve, 2400))
    expect(declaredDead, 'a live remote was declared dead').toBe(false)
    expect(watch.size).toBe(1)

    cut()
    expect(await dead).toBeGreaterThanOrEqual(400)
    // a stream declared dead is no longer watched, and the shared timer stops with the last one
    expect(watch.size).toBe(0)
  })
})
