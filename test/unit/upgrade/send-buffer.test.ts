import { describe, expect, it } from 'vitest'
import { SendBuffer } from '../../../src/upgrade/send-buffer.js'
import type { Outgoing } from '../../../src/upgrade/send-buffer.js'

const bytes = (n: number): Uint8Array => new Uint8Array(n)

describe('SendBuffer', () => {
  it('numbers entries, CLOSE included, and counts the bytes between two sequence numbers', () => {
    const buffer = new SendBuffer(1000)
    expect([buffer.push(bytes(10)).seq, buffer.push(bytes(20)).seq, buffer.push(null).seq]).toEqual([0n, 1n, 2n])
    expect(buffer.length).toBe(3)
    expect(buffer.bytes).toBe(30)
    expect(buffer.bytesBetween(0n, 2n)).toBe(30)
    expect(buffer.bytesBetween(1n, buffer.nextSeq)).toBe(20)
    expect(buffer.at(1n)?.payload?.byteLength).toBe(20)
  })

  it('a cumulative ack drops everything below it, in order, once; an old ack changes nothing', () => {
    const buffer = new SendBuffer(1000)
    for (const n of [1, 2, 3, 4]) buffer.push(bytes(n))
    const delivered: bigint[] = []
    const onDelivered = (entry: Outgoing): void => { delivered.push(entry.seq) }
    buffer.acknowledge(2n, onDelivered)
    buffer.acknowledge(1n, onDelivered)
    expect(delivered).toEqual([0n, 1n])
    expect(buffer.firstSeq).toBe(2n)
    expect(buffer.at(1n)).toBeUndefined()
    expect(buffer.bytes).toBe(7)
    buffer.acknowledge(buffer.nextSeq, onDelivered)
    expect(delivered).toEqual([0n, 1n, 2n, 3n])
    expect(buffer.firstSeq).toBe(buffer.nextSeq)
  })

  it('is bounded in bytes, yet always takes one message when empty', () => {
    const buffer = new SendBuffer(100)
    expect(buffer.hasRoomFor(500)).toBe(true)
    buffer.push(bytes(60))
    expect(buffer.hasRoomFor(40)).toBe(true)
    expect(buffer.hasRoomFor(41)).toBe(false)
  })

  it('a waiting writer wakes when an ack makes room, and stops waiting when its signal aborts', async () => {
    const buffer = new SendBuffer(100)
    buffer.push(bytes(100))
    const woken = buffer.waitForChange()
    buffer.acknowledge(1n, () => {})
    await woken
    expect(buffer.hasRoomFor(100)).toBe(true)

    const controller = new AbortController()
    const waiting = buffer.waitForChange(controller.signal)
    controller.abort(new Error('gave up'))
    await expect(waiting).rejects.toThrow('gave up')
  })

  it('keeps sequence numbers and byte offsets right across the compaction of acknowledged entries', () => {
    const buffer = new SendBuffer(1 << 20)
    for (let i = 0; i < 3000; i++) buffer.push(bytes(1))
    buffer.acknowledge(2500n, () => {})
    expect(buffer.firstSeq).toBe(2500n)
    expect(buffer.at(2999n)?.seq).toBe(2999n)
    expect(buffer.bytesBetween(2500n, 3000n)).toBe(500)
  })
})
