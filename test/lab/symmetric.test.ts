/**
 * Symmetric NATs in the namespace lab (nftables `masquerade fully-random`: a fresh random port per destination).
 * Every trial has fresh peer processes with new identities and flushed NAT tables (src/lab/trial.ts). The peers
 * learn their NAT's mapping themselves, from the gateway's STUN ports; nothing tells them the lab's flavours.
 *
 * Needs root and a built dist/ (`npm test` builds it). NM_SYMMETRIC_TRIALS overrides the 100 trials per direction.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { brief, intact, Lab, quantile, waitResult } from '../helpers/session-lab.ts'
import { median, percentile, runTrials } from '../../src/lab/index.js'
import type { NatFlavour, TrialResult, TrialRun } from '../../src/lab/index.js'
import type { Proc } from '../helpers/session-lab.ts'
import { labNamespaces, pool } from '../helpers/lab-runs.js'

const isRoot = process.getuid?.() === 0
const TRIALS = Number(process.env.NM_SYMMETRIC_TRIALS ?? 100)
/** at least 95 of 100, scaled for local runs with fewer trials */
const REQUIRED_DIRECT = Math.ceil(TRIALS * 0.95)
const SYM_SYM_TRIALS = 20
const TRANSFERS = 5
/**
 * Each side sends at full speed until it has been on the direct path for half a second (a fixed 800 messages once
 * finished on the relay before the punch had even reported, and the transfer "never moved"); maxSendMs only bounds
 * a run whose punch never succeeds.
 */
const SEND = { count: 1_000_000, stopAfterSwitchMs: 500, maxSendMs: 30_000 }

function describeRun (run: TrialRun, seconds: number): string {
  const direct = run.trials.filter(t => t.directOk)
  const ms = direct.flatMap(t => t.msRelayToDirect === undefined ? [] : [t.msRelayToDirect])
  const sockets = direct.flatMap(t => t.holePunch.cost === undefined ? [] : [t.holePunch.cost.sockets])
  const probes = direct.flatMap(t => t.holePunch.cost === undefined ? [] : [t.holePunch.cost.probes])
  return `${run.summary.a} -> ${run.summary.b}: direct ${direct.length}/${run.trials.length}, relay->direct median ${median(ms) ?? '-'} ms, ` +
    `p95 ${percentile(ms, 95) ?? '-'} ms; per success: sockets median ${median(sockets) ?? '-'}, probes median ${median(probes) ?? '-'} ` +
    `p95 ${percentile(probes, 95) ?? '-'}; ${seconds.toFixed(0)} s`
}

function failedTrials (trials: readonly TrialResult[]): string {
  return trials.filter(t => !t.directOk).map(t => `trial ${t.trial}: path ${t.path}, punch ${JSON.stringify(t.holePunch)}${t.error !== undefined ? `, ${t.error}` : ''}`).join('\n')
}

describe.skipIf(!isRoot)('symmetric NATs in the lab', () => {
  const prefixes: string[] = []
  const report: string[] = []

  async function trials (a: NatFlavour, b: NatFlavour, n: number, peerArgs: string[] = []): Promise<TrialRun> {
    const started = performance.now()
    const run = await runTrials({ a, b, trials: n, peerArgs })
    prefixes.push(run.prefix)
    report.push(describeRun(run, (performance.now() - started) / 1000))
    return run
  }

  afterAll(() => {
    console.log(`symmetric NAT lab results:\n  ${report.join('\n  ')}`)
    for (const prefix of prefixes) expect(labNamespaces(prefix)).toEqual([])
  })

  it(`cone -> symmetric and symmetric -> cone go direct by birthday punch in at least ${REQUIRED_DIRECT} of ${TRIALS} trials each`, async () => {
    // the two directions run side by side, each in its own lab. No early dials: where the symmetric side's mapping
    // is not known yet, its dial to the cone side's mapping can get through the cone NAT's filter before any
    // birthday punch (a direct path all the same, but this is about the birthday punch)
    const [coneSym, symCone] = await pool([['cone', 'symmetric'], ['symmetric', 'cone']] as const, 2, async ([a, b]) => await trials(a, b, TRIALS, ['--no-early-dial']))
    for (const run of [coneSym, symCone] as TrialRun[]) {
      const label = `${run.summary.a} -> ${run.summary.b}`
      expect(run.summary.relayOk, label).toBe(TRIALS)
      expect(run.summary.directOk, `${label}, failed trials:\n${failedTrials(run.trials)}`).toBeGreaterThanOrEqual(REQUIRED_DIRECT)
      for (const t of run.trials.filter(r => r.directOk)) {
        expect(t.path, `${label} trial ${t.trial}`).toBe('direct')
        expect(t.holePunch.strategy, `${label} trial ${t.trial}`).toBe('birthday')
        // the symmetric side opened its sockets and closed them again; the probes were bounded
        expect(t.holePunch.cost?.sockets, `${label} trial ${t.trial}`).toBe(256)
        expect(t.holePunch.cost?.probes, `${label} trial ${t.trial}`).toBeLessThanOrEqual(4000 + 256 * 7)
      }
    }
  }, 1_200_000)

  it(`symmetric <-> symmetric: relay in ${SYM_SYM_TRIALS} of ${SYM_SYM_TRIALS}, and no birthday attempt`, async () => {
    const run = await trials('symmetric', 'symmetric', SYM_SYM_TRIALS)
    expect(run.summary.relayOk).toBe(SYM_SYM_TRIALS)
    for (const t of run.trials) {
      expect(t.path, `trial ${t.trial}`).toBe('relay')
      expect(t.holePunch, `trial ${t.trial}`).toMatchObject({ outcome: 'skipped', strategy: 'skip', reason: expect.stringMatching(/both NATs pick a new port/) })
      expect(t.holePunch.cost?.sockets ?? 0, `trial ${t.trial}`).toBe(0)
      expect(t.holePunch.cost?.probes ?? 0, `trial ${t.trial}`).toBe(0)
    }
  }, 300_000)

  describe('a session that starts relayed and goes direct through a birthday punch', () => {
    const lab = new Lab({ prefix: `nm-y${process.pid % 100000}-`, peers: { A: 'cone', B: 'symmetric' } })
    afterAll(async () => { await lab.down() }, 60_000)

    it(`completes intact every time (${TRANSFERS} transfers each way, during the punch)`, async () => {
      await lab.start()
      const failures: string[] = []
      const switchGaps: number[] = []
      // agents load their modules gated, while the previous transfer runs
      const spawnPair = (n: number): { A: Proc, B: Proc } => ({
        B: lab.agent('B', { role: 'responder', ...SEND, seed: n, gate: true }, `B#${n}`),
        A: lab.agent('A', { role: 'initiator', ...SEND, seed: n, gate: true }, `A#${n}`)
      })
      let next = spawnPair(1)
      for (let n = 1; n <= TRANSFERS; n++) {
        const { A, B } = next
        try {
          await Promise.all([lab.flush('A'), lab.flush('B')])
          B.release()
          const ready = await B.waitFor(e => e.event === 'ready', 20_000, 'ready')
          A.release({ target: ready.peerId })
          const [ra, rb] = await Promise.all([waitResult(A, 90_000), waitResult(B, 90_000)])
          for (const [who, r, sent] of [['A', ra, rb.sent], ['B', rb, ra.sent]] as const) {
            if (!intact(r, sent)) failures.push(`transfer ${n}, ${who}: ${brief(r)} (the other side sent ${sent})`)
          }
          if (ra.stats.migrations < 1 || ra.stats.bytesViaDirect <= 0) {
            const punches = [...A.filter(e => e.event === 'hole-punch'), ...B.filter(e => e.event === 'hole-punch')]
            failures.push(`transfer ${n}: never moved to the direct path (${brief(ra)}); hole punches: ${JSON.stringify(punches)}`)
          }
          if (typeof ra.switchGapMs === 'number') switchGaps.push(ra.switchGapMs)
        } catch (err) {
          failures.push(`transfer ${n}: ${(err as Error).message}\n${A.describe()}\n${B.describe()}`)
        } finally {
          if (n < TRANSFERS) next = spawnPair(n + 1)
          // the results are in: a graceful shutdown (about a second each) would only delay the next trial
          await Promise.all([A.stop(0), B.stop(0)])
        }
      }
      report.push(`sessions cone -> symmetric: ${TRANSFERS - failures.length}/${TRANSFERS} intact and migrated; delivery gap at the switch median ${quantile(switchGaps, 0.5)?.toFixed(1) ?? '-'} ms`)
      expect(failures).toEqual([])
    }, 600_000)
  })
})
