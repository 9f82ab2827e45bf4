import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { candidatePolicy, chooseStrategy, NAT_TYPES } from '../../src/ice/strategy.js'
import type { NatType } from '../../src/ice/strategy.js'
import { INITIAL_TIMEOUT_MS, MAX_TIMEOUT_MS, MIN_TIMEOUT_MS, StrategyHistory } from '../../src/ice/strategy-history.js'

describe('connection strategy per NAT type pair', () => {
  const cones: NatType[] = ['no-nat', 'full-cone', 'restricted-cone', 'port-restricted-cone']

  it('goes direct between any two cone (or un-NATed) peers', () => {
    for (const a of cones) for (const b of cones) expect(chooseStrategy(a, b), `${a}/${b}`).toBe('direct')
  })

  it('tries direct with TURN as the fallback when one side is symmetric or unknown', () => {
    for (const a of cones) {
      for (const b of ['symmetric', 'unknown'] as NatType[]) {
        expect(chooseStrategy(a, b), `${a}/${b}`).toBe('turn-fallback')
        expect(chooseStrategy(b, a), `${b}/${a}`).toBe('turn-fallback')
      }
    }
    expect(chooseStrategy('unknown', 'unknown')).toBe('turn-fallback')
    expect(chooseStrategy('symmetric', 'unknown')).toBe('turn-fallback')
  })

  it('goes straight to TURN between two symmetric NATs', () => {
    expect(chooseStrategy('symmetric', 'symmetric')).toBe('turn-only')
  })

  it('stays on the libp2p relay whenever UDP is blocked on either side, whatever the other is', () => {
    for (const other of NAT_TYPES) {
      expect(chooseStrategy('udp-blocked', other)).toBe('relay')
      expect(chooseStrategy(other, 'udp-blocked')).toBe('relay')
    }
  })

  it('gathers what each strategy needs', () => {
    expect(candidatePolicy('direct')).toEqual({ stun: true, turn: false })
    expect(candidatePolicy('turn-fallback')).toEqual({ stun: true, turn: true })
    expect(candidatePolicy('turn-only')).toEqual({ stun: false, turn: true })
  })
})

describe('strategy history', () => {
  let dir: string
  let warnings: string[]
  const history = (file = join(dir, 'sub', 'ice-strategy.json')): StrategyHistory => new StrategyHistory({ file, warn: message => { warnings.push(message) } })

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'natmesh-ice-history-'))
    warnings = []
  })

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  it('shortens the timeout by 10 % after a success and lengthens it by 20 % after a failure, within 3-30 s', async () => {
    const h = history()
    expect(h.timeoutMs('direct')).toBe(INITIAL_TIMEOUT_MS.direct)
    await h.record('direct', true)
    expect(h.timeoutMs('direct')).toBe(Math.round(INITIAL_TIMEOUT_MS.direct * 0.9))
    await h.record('direct', false)
    expect(h.timeoutMs('direct')).toBe(Math.round(Math.round(INITIAL_TIMEOUT_MS.direct * 0.9) * 1.2))
    for (let i = 0; i < 40; i++) await h.record('turn-only', true)
    expect(h.timeoutMs('turn-only')).toBe(MIN_TIMEOUT_MS)
    for (let i = 0; i < 40; i++) await h.record('turn-only', false)
    expect(h.timeoutMs('turn-only')).toBe(MAX_TIMEOUT_MS)
    expect(h.get('turn-only')).toMatchObject({ successes: 40, failures: 40 })
    // strategies learn separately
    expect(h.timeoutMs('turn-fallback')).toBe(INITIAL_TIMEOUT_MS['turn-fallback'])
  })

  it('survives a restart: a new instance reads what the last one wrote', async () => {
    const first = history()
    await first.record('direct', true, 1000)
    await first.record('turn-fallback', false, 2000)
    const second = history()
    await second.load()
    expect(second.all()).toEqual(first.all())
    expect(second.get('direct')).toEqual({ timeoutMs: 13_500, successes: 1, failures: 0, lastSuccessAt: 1000 })
    expect(warnings).toEqual([])
  })

  it('replaces the file atomically and leaves no temporary file behind, also when records race', async () => {
    const h = history()
    await Promise.all(Array.from({ length: 20 }, async (_, i) => { await h.record(i % 2 === 0 ? 'direct' : 'turn-only', true) }))
    expect(await readdir(join(dir, 'sub'))).toEqual(['ice-strategy.json'])
    const saved = JSON.parse(await readFile(join(dir, 'sub', 'ice-strategy.json'), 'utf8'))
    expect(saved.strategies.direct.successes).toBe(10)
    expect(saved.strategies['turn-only'].successes).toBe(10)
  })

  it('starts afresh with a warning from a corrupt, malformed or foreign file, and then overwrites it', async () => {
    const file = join(dir, 'ice-strategy.json')
    const cases = [
      '{"version":1,"strategies":{"direct":{"timeoutMs":', // truncated by a crash of some other writer
      '{"version":2,"strategies":{}}',
      '{"version":1,"strategies":{"direct":{"timeoutMs":"fast","successes":1,"failures":0}}}',
      '{"version":1,"strategies":{"direct":{"timeoutMs":5000,"successes":-1,"failures":0}}}',
      '[]'
    ]
    for (const text of cases) {
      await writeFile(file, text)
      warnings = []
      const h = history(file)
      await h.load()
      expect(warnings, text).toHaveLength(1)
      expect(warnings[0], text).toContain(file)
      expect(h.all(), text).toEqual(history(join(dir, 'none.json')).all())
      await h.record('direct', true)
      expect(JSON.parse(await readFile(file, 'utf8')).strategies.direct.successes, text).toBe(1)
    }
  })

  it('clamps a timeout edited out of range in the file, and ignores a missing file silently', async () => {
    const file = join(dir, 'ice-strategy.json')
    await writeFile(file, JSON.stringify({ version: 1, strategies: { direct: { timeoutMs: 999_999, successes: 3, failures: 1 }, 'turn-only': { timeoutMs: 5, successes: 0, failures: 0 } } }))
    const h = history(file)
    await h.load()
    expect(h.timeoutMs('direct')).toBe(MAX_TIMEOUT_MS)
    expect(h.timeoutMs('turn-only')).toBe(MIN_TIMEOUT_MS)
    const missing = history(join(dir, 'missing.json'))
    await missing.load()
    expect(warnings).toEqual([])
  })

  it('keeps history in memory only when no file is configured', async () => {
    const h = new StrategyHistory({ warn: message => { warnings.push(message) } })
    await h.load()
    await h.record('direct', false)
    expect(h.timeoutMs('direct')).toBe(18_000)
    expect(await readdir(dir)).toEqual([])
  })
})
