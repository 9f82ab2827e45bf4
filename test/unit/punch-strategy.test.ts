import { describe, expect, it } from 'vitest'
import { AttemptBudget } from '../../src/dcutr/attempt-budget.js'
import { FIRST_PORT, LAST_PORT, portCandidates, predictedPorts } from '../../src/dcutr/port-candidates.js'
import { choosePunchStrategy } from '../../src/dcutr/strategy.js'
import type { MappingKind } from '../../src/nat/mapping-profile.js'
import { fromWireMapping, toWireMapping } from '../../src/dcutr/wire-mapping.js'
import { NatMapping } from '../../src/dcutr/pb/hole-punch.js'
import { mappingFromObservations } from '../../src/nat/nat-mapping.js'

const m = (kind: MappingKind, delta?: number): { kind: MappingKind, delta?: number } => delta == null ? { kind } : { kind, delta }

describe('punch strategy per pair of NAT mappings', () => {
  it('skips when both NATs change ports per destination, whatever else is agreed', () => {
    for (const [a, b] of [['random', 'random'], ['random', 'sequential'], ['sequential', 'sequential']] as const) {
      const strategy = choosePunchStrategy(m(a, 2), m(b, 2), true)
      expect(strategy.kind).toBe('skip')
      expect(strategy.kind === 'skip' && strategy.reason).toMatch(/both NATs/)
    }
  })

  it('birthday punches when exactly one side changes ports and the other keeps one mapping; the changing side sprays', () => {
    expect(choosePunchStrategy(m('random'), m('endpoint-independent'), true)).toEqual({ kind: 'birthday', sprayer: 'initiator' })
    expect(choosePunchStrategy(m('endpoint-independent'), m('random'), true)).toEqual({ kind: 'birthday', sprayer: 'responder' })
    expect(choosePunchStrategy(m('endpoint-independent'), m('sequential', 2), true)).toEqual({ kind: 'birthday', sprayer: 'responder', predictedDelta: 2 })
  })

  it('stays on the relay, saying why, when a birthday punch is needed but not agreed', () => {
    const strategy = choosePunchStrategy(m('random'), m('endpoint-independent'), false)
    expect(strategy).toMatchObject({ kind: 'skip', reason: expect.stringMatching(/turned off or its attempt budget spent/) })
  })

  it('uses plain DCUtR when a side is open, both keep their mapping, or a mapping is unknown', () => {
    const plain: Array<[MappingKind, MappingKind]> = [
      ['open', 'random'], ['random', 'open'], ['open', 'open'], ['endpoint-independent', 'endpoint-independent'],
      ['unknown', 'random'], ['random', 'unknown'], ['unknown', 'unknown'], ['endpoint-independent', 'unknown']
    ]
    for (const [a, b] of plain) expect(choosePunchStrategy(m(a), m(b), true), `${a} / ${b}`).toEqual({ kind: 'dcutr' })
  })
})

describe('probe port order', () => {
  it('tries predicted ports first, then every other port exactly once', () => {
    const order = [...portCandidates([5000, 5002, 5002, 80, 70_000, 5004])]
    expect(order.slice(0, 3)).toEqual([5000, 5002, 5004])
    const seen = new Set(order)
    expect(seen.size).toBe(order.length)
    expect(seen.size).toBe(LAST_PORT - FIRST_PORT + 1)
    expect(Math.min(...seen)).toBe(FIRST_PORT)
    expect(Math.max(...seen)).toBe(LAST_PORT)
  })

  it('is a different random order each time', () => {
    const first = portCandidates()
    const second = portCandidates()
    const a = Array.from({ length: 20 }, () => first.next().value)
    const b = Array.from({ length: 20 }, () => second.next().value)
    expect(a).not.toEqual(b)
  })

  it('predicts a sequential NAT\'s next ports, within the port range', () => {
    expect(predictedPorts(40_000, 2, 3)).toEqual([40_002, 40_004, 40_006])
    expect(predictedPorts(40_000, -1, 2)).toEqual([39_999, 39_998])
    expect(predictedPorts(65_534, 1, 5)).toEqual([65_535])
  })
})

describe('NAT mapping on the wire', () => {
  it('round-trips every kind', () => {
    for (const kind of ['open', 'endpoint-independent', 'random', 'unknown'] as const) {
      expect(fromWireMapping(NatMapping.decode(NatMapping.encode(toWireMapping({ kind }))))).toEqual({ kind })
    }
    expect(fromWireMapping(toWireMapping({ kind: 'sequential', delta: -3 }))).toEqual({ kind: 'sequential', delta: -3 })
  })

  it('reads absent or hostile values as something safe', () => {
    expect(fromWireMapping(undefined)).toEqual({ kind: 'unknown' })
    // a sequential NAT with no usable step can't be predicted: treat it like a random one
    expect(fromWireMapping({ kind: NatMapping.Kind.SEQUENTIAL })).toEqual({ kind: 'random' })
    expect(fromWireMapping({ kind: NatMapping.Kind.SEQUENTIAL, delta: 0 })).toEqual({ kind: 'random' })
    expect(fromWireMapping({ kind: NatMapping.Kind.SEQUENTIAL, delta: 1_000_000 })).toEqual({ kind: 'random' })
    expect(fromWireMapping({ kind: 'BOGUS' as NatMapping.Kind })).toEqual({ kind: 'unknown' })
    // a delta only means something for a sequential NAT
    expect(fromWireMapping({ kind: NatMapping.Kind.RANDOM, delta: 4 })).toEqual({ kind: 'random' })
  })
})

describe('birthday attempt budget', () => {
  it('allows N attempts per peer in any sliding minute', () => {
    let now = 0
    const budget = new AttemptBudget(2, () => now)
    expect(budget.take('a')).toBe(true)
    now = 30_000
    expect(budget.take('a')).toBe(true)
    expect(budget.available('a')).toBe(false)
    expect(budget.take('a')).toBe(false)
    // other peers have their own budget
    expect(budget.take('b')).toBe(true)
    // the first use leaves the window a minute after it
    now = 60_001
    expect(budget.available('a')).toBe(true)
    expect(budget.take('a')).toBe(true)
    expect(budget.take('a')).toBe(false)
  })
})

describe('mapping from the gateways\' observations', () => {
  const local = { port: 4001, hosts: ['127.0.0.1', '11.0.113.30'] }
  const at = (host: string, port: number): { host: string, port: number, family: 4 } => ({ host, port, family: 4 })

  it('knows nothing from no observation', () => {
    expect(mappingFromObservations(local, [])).toEqual({ kind: 'unknown' })
  })

  it('is open when a gateway saw our own address and port', () => {
    expect(mappingFromObservations(local, [at('11.0.113.30', 4001)])).toEqual({ kind: 'open' })
  })

  it('compares ports seen by several gateways', () => {
    expect(mappingFromObservations(local, [at('11.0.113.21', 5000), at('11.0.113.21', 5000)])).toEqual({ kind: 'endpoint-independent' })
    expect(mappingFromObservations(local, [at('11.0.113.21', 5000), at('11.0.113.21', 61_000)])).toEqual({ kind: 'random' })
  })

  it('reads one gateway\'s view of our own port as a port-preserving NAT, and any other port as unknown', () => {
    expect(mappingFromObservations(local, [at('11.0.113.21', 4001)])).toEqual({ kind: 'endpoint-independent' })
    expect(mappingFromObservations(local, [at('11.0.113.21', 5000)])).toEqual({ kind: 'unknown' })
  })
})
