/**
 * ICE mode between real peer processes in the namespace NAT lab: one `natmesh gateway --turn` (its STUN server and
 * the coturn it supervises), and two session agents (test/lab/session-agent.ts) in `--mode ice` that detect their
 * NAT types, fetch the gateway's ICE servers and stream verified messages both ways while the relayed session
 * moves onto the WebRTC connection.
 *
 * Needs root (namespaces, nftables, conntrack), coturn (`turnserver`) and a built dist/ (`npm test` builds it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { IceLab } from '../helpers/ice-lab.ts'
import { brief, intact, waitResult } from '../helpers/session-lab.ts'
import type { Ev, Proc, SessionResult } from '../helpers/session-lab.ts'

const isRoot = process.getuid?.() === 0
/**
 * Each side sends until it has been on the ICE path for a second (a fixed count once finished on the relay before
 * ICE produced a path, on a quiet machine), paced to ~6 MB/s; maxSendMs only bounds a run where ICE never does.
 */
const SEND = { count: 1_000_000, stopAfterSwitchMs: 1000, maxSendMs: 45_000, paceEvery: 10, paceMs: 10 }

interface Trial { a: SessionResult, b: SessionResult, ice: Ev[], paths: Ev[], A: Proc, B: Proc }

describe.skipIf(!isRoot)('ice mode in the NAT lab (real processes, real coturn)', () => {
  const lab = new IceLab({ prefix: `nm-ice${process.pid % 100000}-` })

  beforeAll(async () => {
    await lab.start()
  }, 60_000)

  afterAll(async () => {
    await lab.down()
  }, 60_000)

  /** one session A → B both ways at full speed; both agents stopped afterwards */
  async function trial (seed: number): Promise<Trial> {
    await Promise.all([lab.flush('A'), lab.flush('B')])
    const B = lab.iceAgent('B', { role: 'responder', ...SEND, seed }, `B#${seed}`)
    const A = lab.iceAgent('A', { role: 'initiator', ...SEND, seed, gate: true }, `A#${seed}`)
    try {
      const ready = await B.waitFor(e => e.event === 'ready', 20_000, 'ready')
      A.release({ target: ready.peerId })
      const [a, b] = await Promise.all([waitResult(A, 90_000), waitResult(B, 90_000)])
      const paths = [...A.filter(e => e.event === 'ice-path'), ...B.filter(e => e.event === 'ice-path')]
      return { a, b, ice: A.filter(e => e.event === 'ice'), paths, A, B }
    } finally {
      await Promise.all([A.stop(), B.stop()])
    }
  }

  function check (t: Trial, strategy: string, candidateType: string): void {
    const context = `A: ${brief(t.a)}\nB: ${brief(t.b)}\nice: ${JSON.stringify(t.ice)}\npaths: ${JSON.stringify(t.paths)}\n${t.A.describe()}\n${t.B.describe()}\n${lab.gateway?.describe() ?? ''}`
    // open-ended: each side must have received exactly what the other sent
    expect(intact(t.a, t.b.sent), context).toBe(true)
    expect(intact(t.b, t.a.sent), context).toBe(true)
    // the strategy follows from the NAT types both peers detected against the gateway's STUN server
    expect(t.ice.map(e => [e.strategy, e.outcome, e.candidateType]), context).toEqual([[strategy, 'success', candidateType]])
    // both sides see the WebRTC connection with the same kind of pair
    expect(t.paths.map(e => e.candidateType), context).toEqual([candidateType, candidateType])
    // the session started on the relay and moved onto the ICE connection mid-stream
    expect(t.a.startPath, context).toBe('relay')
    expect(t.a.stats.migrations, context).toBeGreaterThanOrEqual(1)
    expect(t.a.stats.bytesViaDirect, context).toBeGreaterThan(0)
    expect(t.b.stats.bytesViaDirect, context).toBeGreaterThan(0)
  }

  it('cone to cone: ICE goes direct (a srflx pair) and the session moves onto it with nothing lost', async () => {
    const t = await trial(1)
    check(t, 'direct', 'srflx')
    const remote = String(t.paths[0]?.remote)
    // not through the gateway's address: the pair is the other NAT's mapping
    expect(remote).not.toContain(lab.topo.gatewayIp(0))
  }, 120_000)

  it('symmetric to symmetric: the data goes through coturn (a relay pair on the gateway) with nothing lost', async () => {
    await Promise.all([lab.topo.setFlavour('A', 'symmetric'), lab.topo.setFlavour('B', 'symmetric')])
    try {
      const t = await trial(2)
      check(t, 'turn-only', 'relay')
      // A's selected pair ends at a relayed transport address coturn allocated on the gateway
      expect(t.paths.some(e => String(e.remote).includes(`${lab.topo.gatewayIp(0)}:`)), JSON.stringify(t.paths)).toBe(true)
    } finally {
      await Promise.all([lab.topo.setFlavour('A', 'cone'), lab.topo.setFlavour('B', 'cone')])
    }
  }, 120_000)

  it('cone to symmetric: tries direct with TURN as the fallback, and the TURN path carries the data', async () => {
    await lab.topo.setFlavour('B', 'symmetric')
    try {
      const t = await trial(3)
      // a port-restricted cone NAT never lets the symmetric side's new mapping in: only the relay pair works
      check(t, 'turn-fallback', 'relay')
    } finally {
      await lab.topo.setFlavour('B', 'cone')
    }
  }, 120_000)
})
