import { describe, expect, it } from 'vitest'
import { decide, DEFAULT_PUNCH_SETTINGS } from '../../src/lab/trial-decide.js'
import { trialResult } from '../../src/lab/trial-result.js'
import type { JsonEvent, TimedEvent } from '../../src/lab/trial-process.js'

const ev = (at: number, event: JsonEvent): TimedEvent => ({ at, event })
const s = { ...DEFAULT_PUNCH_SETTINGS, timeoutMs: 500, retries: 1 }
const relay = ev(100, { event: 'ping', path: 'relay', rttMs: 5 })
const skipped = ev(150, { event: 'hole-punch', peer: 'A', outcome: 'skipped', attempts: 0, code: 'NO_UDP_PATH', reason: 'the remote peer has no UDP path' })
const bTimeout = ev(600, { event: 'hole-punch', peer: 'A', outcome: 'failure', attempts: 1, code: 'TIMEOUT', reason: 'timed out' })
const aCutShort = ev(610, { event: 'hole-punch', outcome: 'failure', attempts: 1, code: 'CUT_SHORT', reason: 'cut short after 500 ms' })

describe('a trial\'s verdict, by code', () => {
  it('names how the trial ended with a code; a punch outcome\'s code comes along', () => {
    expect(decide({ a: [relay, ev(300, { event: 'ping', path: 'direct', rttMs: 1 })], b: [] }, s, 300)).toMatchObject({ done: true, code: 'DIRECT' })
    expect(decide({ a: [ev(50, { event: 'error', message: 'dial failed' })], b: [] }, s, 50)).toMatchObject({ done: true, code: 'A_ERROR', why: 'A reported an error: dial failed' })
    expect(decide({ a: [relay], b: [] }, { ...s, enabled: false }, 100)).toMatchObject({ done: true, code: 'NO_PUNCHING' })
    expect(decide({ a: [relay], b: [skipped], aPeerId: 'A' }, s, 150)).toMatchObject({ done: true, code: 'PUNCH_SKIPPED', punchCode: 'NO_UDP_PATH' })
    // both failed: B drives the exchange, its code comes first
    expect(decide({ a: [relay, aCutShort], b: [bTimeout], aPeerId: 'A' }, s, 610)).toMatchObject({ done: true, code: 'PUNCH_FAILED_BOTH', punchCode: 'TIMEOUT' })
    expect(decide({ a: [relay, aCutShort], b: [] }, s, 610)).toMatchObject({ done: true, code: 'PUNCH_FAILED_A', punchCode: 'CUT_SHORT' })
    expect(decide({ a: [relay], b: [bTimeout], aPeerId: 'A' }, { ...s, retries: 3 }, 2000)).toMatchObject({ done: true, code: 'PUNCH_FAILED_B', punchCode: 'TIMEOUT' })
    expect(decide({ a: [relay], b: [] }, s, 100 + 500 + 1000 + 500)).toMatchObject({ done: true, code: 'PROBE_EXPIRED' })
  })

  it('leaves punchCode out when the outcome had none', () => {
    const uncoded = ev(600, { event: 'hole-punch', outcome: 'failure', attempts: 1 })
    expect(decide({ a: [relay, uncoded], b: [] }, s, 610)).toEqual({ done: true, code: 'PUNCH_FAILED_A', why: 'hole punch failed on A for every attempt' })
  })

  it('the trial\'s result carries the punch\'s code: B\'s, else A\'s', () => {
    const observe = (aEvents: JsonEvent[], bEvents: JsonEvent[]): ReturnType<typeof trialResult> => trialResult({
      trial: 1, a: 'cone', b: 'cone', aEvents: [{ event: 'started', peerId: 'A' }, ...aEvents], bEvents, durationMs: 1, phasesMs: { stop: 0 }, context: []
    })
    expect(observe([relay.event], [skipped.event]).holePunch).toMatchObject({ outcome: 'skipped', code: 'NO_UDP_PATH' })
    expect(observe([relay.event, aCutShort.event], [bTimeout.event]).holePunch).toMatchObject({ outcome: 'failure', code: 'TIMEOUT' })
    expect(observe([relay.event, aCutShort.event], []).holePunch).toMatchObject({ outcome: 'failure', code: 'CUT_SHORT' })
  })
})
