import { randomBytes } from 'node:crypto'
import { describe, expect, it } from 'vitest'
import { bindingRequest, bindingResponse, changeRequestRefused, parseBindingRequest, parseBindingResponse } from '../../src/stun/codec.js'
import { TokenBuckets } from '../../src/core/token-buckets.js'

describe('STUN Binding messages', () => {
  it('round-trips a request with CHANGE-REQUEST flags', () => {
    const id = randomBytes(12)
    expect(parseBindingRequest(bindingRequest(id))).toEqual({ transactionId: id, change: { ip: false, port: false }, fingerprint: false })
    expect(parseBindingRequest(bindingRequest(id, { ip: true, port: false }, { fingerprint: true }))).toEqual({ transactionId: id, change: { ip: true, port: false }, fingerprint: true })
    expect(parseBindingRequest(bindingRequest(id, { ip: true, port: true }))?.change).toEqual({ ip: true, port: true })
  })

  it('round-trips a response with the RFC 5780 addresses, and a 420 refusal', () => {
    const id = randomBytes(12)
    const response = bindingResponse({ transactionId: id, mapped: { address: '11.0.113.21', port: 40000 }, origin: { address: '11.0.113.10', port: 3479 }, other: { address: '11.0.113.200', port: 3479 } })
    expect(parseBindingResponse(response)).toEqual({
      kind: 'success', transactionId: id, mapped: { address: '11.0.113.21', port: 40000 }, origin: { address: '11.0.113.10', port: 3479 }, other: { address: '11.0.113.200', port: 3479 }
    })
    expect(parseBindingResponse(changeRequestRefused(id))).toEqual({ kind: 'error', transactionId: id, code: 420 })
  })

  it('rejects what is not a well-formed Binding request: truncation, lying lengths, responses, RFC 3489 messages', () => {
    const request = bindingRequest(randomBytes(12), { ip: false, port: true })
    for (let length = 0; length < request.length; length++) expect(parseBindingRequest(request.subarray(0, length))).toBeUndefined()
    const lying = Buffer.from(request)
    lying.writeUInt16BE(4, 2)
    expect(parseBindingRequest(lying)).toBeUndefined()
    const legacy = Buffer.from(request)
    legacy.writeUInt32BE(0, 4)
    expect(parseBindingRequest(legacy)).toBeUndefined()
    expect(parseBindingRequest(bindingResponse({ transactionId: randomBytes(12), mapped: { address: '11.0.113.21', port: 1 } }))).toBeUndefined()
    expect(parseBindingResponse(request)).toBeUndefined()
  })
})

describe('per-source token buckets', () => {
  it('allows a burst, then the refill rate, per source', () => {
    let now = 0
    const buckets = new TokenBuckets({ ratePerSecond: 100, burst: 200, now: () => now })
    let allowed = 0
    for (let i = 0; i < 500; i++) if (buckets.take('a')) allowed++
    expect(allowed).toBe(200)
    expect(buckets.take('b')).toBe(true)
    now += 1000
    allowed = 0
    for (let i = 0; i < 500; i++) if (buckets.take('a')) allowed++
    expect(allowed).toBe(100)
  })

  it('is off at rate 0, and stays bounded: refilled buckets are forgotten, busy ones kept', () => {
    const off = new TokenBuckets({ ratePerSecond: 0, burst: 1 })
    for (let i = 0; i < 1000; i++) expect(off.take('a')).toBe(true)
    let now = 0
    const buckets = new TokenBuckets({ ratePerSecond: 10, burst: 2, maxSources: 3, now: () => now })
    for (const source of ['a', 'b', 'c']) buckets.take(source)
    expect(buckets.take('d')).toBe(false)
    now += 1000
    expect(buckets.take('d')).toBe(true)
    expect(buckets.size).toBe(1)
  })
})
