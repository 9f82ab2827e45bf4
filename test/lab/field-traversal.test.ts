/**
 * Traversal where edge nodes really live, in the namespace NAT lab (real processes: a `natmesh gateway` and
 * test/lab/session-agent.ts peers):
 * - two hosts behind one NAT (no hairpinning) go direct over their LAN addresses;
 * - a UDP-blocked peer reaches a cone peer over TCP at once, skips the punch for want of a UDP path, and moves its
 *   gateway link to UDP when UDP gets through again;
 * - a punch cut short by the relayed connection closing says so, with its real duration.
 *
 * Needs root and a built dist/ (`tsc -p tsconfig.json`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { brief, intact, Lab, quantile, waitResult } from '../helpers/session-lab.ts'
import type { Ev, Proc } from '../helpers/session-lab.ts'
import { addLanMate } from '../helpers/same-site-lab.ts'
import type { LanMate } from '../helpers/same-site-lab.ts'
import { execIn } from '../../dist/lab/netns.js'

const isRoot = process.getuid?.() === 0
const id = process.pid % 100000
/** sends until it has been on the direct path for half a second; maxSendMs only bounds a run that never moves */
const SEND = { count: 1_000_000, stopAfterSwitchMs: 500, maxSendMs: 20_000 }
const SAME_NAT_TRIALS = Number(process.env.NM_SAME_NAT_TRIALS ?? 10)

function punches (...procs: Proc[]): Ev[] {
  return procs.flatMap(p => p.filter(e => e.event === 'hole-punch').map(e => ({ ...e, by: p.name })))
}

describe.skipIf(!isRoot)('two hosts behind one NAT', () => {
  const lab = new Lab({ prefix: `nm-tv${id}-`, peers: { A: 'cone' } })
  let mate: LanMate | undefined

  beforeAll(async () => {
    await lab.start()
    mate = await addLanMate(lab, 'A')
  }, 60_000)

  afterAll(async () => {
    await mate?.remove()
    await lab.down()
  }, 60_000)

  it(`go direct over their LAN addresses and the session moves there intact (${SAME_NAT_TRIALS} trials)`, async () => {
    const failures: string[] = []
    const switches: number[] = []
    const punchMs: number[] = []
    const lanMate = mate as LanMate
    const lanIps = [lab.topo.peerIp('A'), lanMate.ip]
    for (let n = 1; n <= SAME_NAT_TRIALS; n++) {
      await lab.flush('A')
      const B = lanMate.agent({ role: 'responder', ...SEND, seed: n }, `B#${n}`)
      let A: Proc | undefined
      try {
        const ready = await B.waitFor(e => e.event === 'ready', 20_000, 'ready')
        A = lab.agent('A', { role: 'initiator', target: String(ready.peerId), ...SEND, seed: n }, `A#${n}`)
        const [ra, rb] = await Promise.all([waitResult(A, 60_000), waitResult(B, 60_000)])
        const all = punches(A, B)
        const success = all.find(e => e.outcome === 'success')
        const remote = typeof success?.remoteAddr === 'string' ? success.remoteAddr : ''
        console.log(`same NAT trial ${n}: punch ${String(success?.msSinceRelay ?? '-')} ms after the relay via ${remote || '-'}; session on the direct path ${ra.switchAt ?? '-'} ms after it opened; ` +
          JSON.stringify(all.map(e => ({ by: e.by, outcome: e.outcome, attempts: e.attempts, reason: e.reason, ms: (e.cost as { ms?: number } | undefined)?.ms }))))
        if (!intact(ra, rb.sent)) failures.push(`trial ${n}, A: ${brief(ra)} (B sent ${rb.sent})`)
        if (!intact(rb, ra.sent)) failures.push(`trial ${n}, B: ${brief(rb)} (A sent ${ra.sent})`)
        if (!lanIps.some(lanIp => remote.startsWith(`/ip4/${lanIp}/udp/`))) failures.push(`trial ${n}: not direct over the LAN: ${JSON.stringify(all)}`)
        if (ra.stats.migrations < 1 || ra.stats.bytesViaDirect <= 0) failures.push(`trial ${n}: the session never moved: ${brief(ra)}`)
        if (typeof ra.switchAt === 'number') switches.push(ra.switchAt)
        if (typeof success?.msSinceRelay === 'number') punchMs.push(success.msSinceRelay)
      } catch (err) {
        failures.push(`trial ${n}: ${(err as Error).message}\n${A?.describe() ?? ''}\n${B.describe()}`)
      } finally {
        await Promise.all([A?.stop(0), B.stop(0)])
      }
    }
    console.log(`same NAT: ${SAME_NAT_TRIALS - failures.length}/${SAME_NAT_TRIALS} ok; relayed -> direct median ${quantile(punchMs, 0.5) ?? '-'} ms p95 ${quantile(punchMs, 0.95) ?? '-'} ms; ` +
      `session on the direct path after open: median ${quantile(switches, 0.5) ?? '-'} ms p95 ${quantile(switches, 0.95) ?? '-'} ms`)
    expect(failures).toEqual([])
  }, 600_000)
})

describe.skipIf(!isRoot)('a UDP-blocked peer', () => {
  const lab = new Lab({ prefix: `nm-tu${id}-`, peers: { A: 'udp-blocked', B: 'cone' } })

  beforeAll(async () => { await lab.start() }, 60_000)
  afterAll(async () => { await lab.down() }, 60_000)

  it('reaches a cone peer over TCP, skips the punch (no UDP path) instead of failing it, and the session is intact', async () => {
    const B = lab.agent('B', { role: 'responder', count: 300 }, 'B-cone')
    let A: Proc | undefined
    try {
      const ready = await B.waitFor(e => e.event === 'ready', 20_000, 'ready')
      A = lab.agent('A', { role: 'initiator', target: String(ready.peerId), count: 300, requirePublicAddress: false }, 'A-blocked')
      const [ra, rb] = await Promise.all([waitResult(A, 60_000), waitResult(B, 60_000)])
      const started = A.find(e => e.event === 'started')
      const open = A.find(e => e.event === 'session-open')
      const timeline = A.filter(e => e.at <= Number(open?.at) && e.event !== 'progress').map(e => `${e.event} +${Number(e.t) - Number(started?.t)}`).join(', ')
      console.log(`UDP-blocked -> cone: session open ${Number(open?.t) - Number(started?.t)} ms after the peer started (openSession took ${String(open?.openMs)} ms): ${timeline}`)
      expect(intact(ra, 300), brief(ra)).toBe(true)
      expect(intact(rb, 300), brief(rb)).toBe(true)
      expect(A.filter(e => e.event === 'gateway-connected').map(e => e.transport), A.describe(40)).toEqual(['tcp'])
      // B received the relayed connection, so B runs the DCUtR exchange: it learns A has no UDP path and stops
      // (300 messages may be through before that exchange is: wait for its outcome, not for the transfer)
      await B.waitFor(e => e.event === 'hole-punch', 20_000, 'B\'s hole-punch outcome')
      const all = punches(A, B)
      expect(all.find(e => e.by === 'B-cone'), JSON.stringify(all)).toMatchObject({ outcome: 'skipped', code: 'NO_UDP_PATH', reason: expect.stringMatching(/no UDP path/) })
      expect(all.filter(e => e.outcome !== 'skipped'), JSON.stringify(all)).toEqual([])
    } finally {
      await Promise.all([A?.stop(), B.stop()])
    }
  }, 120_000)

  it('moves its gateway link back to UDP once UDP gets through', async () => {
    const A = lab.agent('A', { role: 'responder', count: 0, requirePublicAddress: false, peer: { gatewayUdpRetryMs: 1000 } }, 'A-unblocked')
    try {
      await A.waitFor(e => e.event === 'reservation', 20_000, 'a reservation')
      expect(A.filter(e => e.event === 'gateway-connected').map(e => e.transport)).toEqual(['tcp'])
      const unblockedAt = Date.now()
      await lab.topo.setFlavour('A', 'cone')
      await A.waitFor(e => e.event === 'gateway-connected' && e.transport === 'udx', 20_000, 'the gateway link over UDP')
      // the reservation now lives on the UDP connection, and the gateway observes our UDP address: punches can work
      await A.waitFor(e => e.event === 'reservation' && e.at >= unblockedAt, 10_000, 'the reservation over UDP')
      await A.waitFor(e => e.event === 'observed-address', 10_000, 'an observed UDP address')
    } finally {
      await A.stop()
      await lab.topo.setFlavour('A', 'udp-blocked')
    }
  }, 120_000)
})

describe.skipIf(!isRoot)('a hole punch cut short', () => {
  const lab = new Lab({ prefix: `nm-tc${id}-`, peers: { A: 'cone', B: 'cone' } })

  beforeAll(async () => {
    await lab.start()
    // UDP between the two NATs is dropped, so the punch runs until something ends it
    await execIn(lab.topo.nat('A'), ['nft', 'insert', 'rule', 'ip', 'natmesh', 'forward', 'ip', 'daddr', lab.topo.natWanIp('B'), 'meta', 'l4proto', 'udp', 'drop'])
  }, 60_000)
  afterAll(async () => { await lab.down() }, 60_000)

  it('by the relayed connection closing says so, with its real duration, and is not retried', async () => {
    const timeoutMs = 30_000
    const peer = { holePunchTimeoutMs: timeoutMs, holePunchRetries: 3 }
    // a paced transfer of a few seconds: B's attempt starts once identify has run over the relayed connection,
    // which a loaded machine may take a second or two for
    const send = { count: 1_000_000, paceEvery: 1, paceMs: 20, maxSendMs: 6000, peer }
    const B = lab.agent('B', { role: 'responder', ...send }, 'B-cut')
    let A: Proc | undefined
    try {
      const ready = await B.waitFor(e => e.event === 'ready', 20_000, 'ready')
      // A finishes its transfer and stops: its relayed connection closes in the middle of B's attempt
      A = lab.agent('A', { role: 'initiator', target: String(ready.peerId), ...send, exitWhenDone: true }, 'A-cut')
      await A.exited
      const punch = await B.waitFor(e => e.event === 'hole-punch', 20_000, 'the hole-punch outcome')
      console.log(`cut-short punch: ${JSON.stringify(punch)}`)
      expect(punch).toMatchObject({ outcome: 'failure', code: 'CUT_SHORT', attempts: 1, reason: expect.stringMatching(/^cut short after \d+ ms: the relayed connection closed/) })
      const cost = punch.cost as { ms: number }
      expect(cost.ms).toBeLessThan(timeoutMs)
      expect(String(punch.reason)).not.toMatch(/within/)
    } finally {
      await Promise.all([A?.stop(), B.stop()])
    }
  }, 120_000)
})
