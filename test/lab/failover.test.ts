/**
 * Failover in the namespace NAT lab: two gateways, two peers behind cone NATs holding reservations on both, a
 * relay-only session paced through one gateway. That gateway is SIGKILLed (it closes nothing: its peers' udx
 * streams just fall silent) and stays dead: both peers must report it lost because their paths to it went
 * silent (not because of a transport timeout), and the session must resume through the other gateway with every
 * message delivered once, in order. The stall and the detection times are printed; bench:field measures them.
 *
 * Needs root (namespaces, nftables, conntrack) and a built dist/ (`npm test` builds it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { brief, intact, Lab, waitResult } from '../helpers/session-lab.ts'
import type { Ev, Proc } from '../helpers/session-lab.ts'

const isRoot = process.getuid?.() === 0
const COUNT = 2000

function lostEvents (p: Proc, gateway: string, since: number): Ev[] {
  return p.filter(e => e.event === 'gateway-lost' && e.gateway === gateway && e.at >= since)
}

describe.skipIf(!isRoot)('failover between gateways in the NAT lab (real processes)', () => {
  const lab = new Lab({ prefix: `nm-fo${process.pid % 100000}-`, gateways: 2 })

  beforeAll(async () => {
    await lab.start()
  }, 90_000)

  afterAll(async () => {
    await lab.down()
  }, 60_000)

  it('a relayed session whose gateway is SIGKILLed resumes through the other gateway, nothing lost; both peers report the gateway lost for its silence', async () => {
    const peer = { mode: 'relay-only' }
    const common = { count: COUNT, paceEvery: 20, paceMs: 50, progressMs: 100, peer }
    const B = lab.agent('B', { role: 'responder', ...common }, 'B-failover')
    let A: Proc | undefined
    try {
      const ready = await B.waitFor(e => e.event === 'ready', 20_000, 'ready')
      // B must be reachable through both gateways before one of them dies
      for (const id of lab.gatewayIds) await B.waitFor(e => e.event === 'reservation' && e.gateway === id, 20_000, `B's reservation on ${id}`)
      A = lab.agent('A', { role: 'initiator', target: String(ready.peerId), ...common }, 'A-failover')
      for (const id of lab.gatewayIds) await A.waitFor(e => e.event === 'reservation' && e.gateway === id, 20_000, `A's reservation on ${id}`)
      const opened = await A.waitFor(e => e.event === 'connection' && e.path === 'relay', 20_000, 'the relayed connection')
      const carrying = lab.gatewayIds.findIndex(id => String(opened.remoteAddr).includes(`/p2p/${id}/p2p-circuit`))
      expect(carrying, `the relayed connection ${String(opened.remoteAddr)} names one of the gateways`).toBeGreaterThanOrEqual(0)
      const dead = lab.gatewayIds[carrying] as string
      const before = await A.waitFor(e => e.event === 'progress' && Number(e.received) >= 300, 30_000, '300 messages received')

      const killedAt = Date.now()
      lab.gateways[carrying]?.kill('SIGKILL')
      await lab.gateways[carrying]?.exited
      const [ra, rb] = await Promise.all([waitResult(A, 90_000), waitResult(B, 90_000)])

      const resumed = A.find(e => e.event === 'session-path' && e.at >= killedAt)
      const lostA = lostEvents(A, dead, killedAt)
      const lostB = lostEvents(B, dead, killedAt)
      console.log(`failover: killed the gateway carrying the session at A's progress ${JSON.stringify({ sent: before.sent, received: before.received })}; ` +
        `A reported it lost ${lostA[0] === undefined ? 'never' : `${lostA[0].at - killedAt} ms`} after the kill (${String(lostA[0]?.reason)}), ` +
        `B ${lostB[0] === undefined ? 'never' : `${lostB[0].at - killedAt} ms`}; the session resumed on the ${String(resumed?.path)} ` +
        `${resumed === undefined ? 'never' : `${resumed.at - killedAt} ms`} after the kill`)

      expect(Number(before.received)).toBeLessThan(COUNT)
      expect(intact(ra, COUNT), brief(ra)).toBe(true)
      expect(intact(rb, COUNT), brief(rb)).toBe(true)
      expect(ra.resumingEvents.length, 'the session lost its path and resumed').toBeGreaterThanOrEqual(1)
      expect(resumed?.path).toBe('relay')
      // the path through the dead gateway was declared dead for its silence, by the liveness rule
      for (const lost of [lostA, lostB]) expect(lost.map(e => String(e.reason))).toContainEqual(expect.stringMatching(/no packet from the remote/))
    } finally {
      await Promise.all([A?.stop(), B.stop()])
    }
  }, 150_000)
})
