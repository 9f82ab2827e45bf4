/**
 * Network change in the namespace NAT lab: peers A and B behind cone NATs hold a session that has gone direct;
 * mid-transfer A's network changes under the running process: its namespace link moves to a third NAT's LAN (a new
 * LAN address, default route and public address), or its NAT restarts with new mappings (a new WAN address, every
 * conntrack entry gone). The session must resume with every message delivered once, in order, and be direct again
 * afterwards, over A's new public address. The time from the change to direct again is printed (bench:field's
 * territory for targets, not an assertion here).
 *
 * Needs root (namespaces, nftables, conntrack) and a built dist/ (`npm test` builds it).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { IceLab } from '../helpers/ice-lab.ts'
import { brief, intact, Lab, onDirectPath, waitResult } from '../helpers/session-lab.ts'
import type { AgentInit, Ev, Proc } from '../helpers/session-lab.ts'

const isRoot = process.getuid?.() === 0
/** paced to run ~15 s: long enough for the change, the path loss and the new punch to happen mid-transfer */
const COUNT = 6000
const common = { count: COUNT, paceEvery: 20, paceMs: 50, progressMs: 100 }

function timeline (p: Proc, since: number): string {
  return p.filter(e => e.event !== 'progress' && e.at >= since)
    .map(e => `  ${p.name} +${e.at - since} ms ${e.event}${typeof e.path === 'string' ? ` ${e.path}` : ''}${typeof e.outcome === 'string' ? ` ${e.outcome}` : ''}` +
      `${typeof e.remoteAddr === 'string' ? ` ${e.remoteAddr}` : ''}${typeof e.reason === 'string' ? ` (${e.reason})` : ''}`)
    .join('\n')
}

interface ChangeCase {
  name: string
  /** starts a session agent in the slot */
  agent: (slot: string, init: AgentInit, name: string) => Proc
  change: () => Promise<void>
  /** A's public IP after the change */
  newPublicIp: () => string
  /** the addresses B's direct connections after the change reach A at */
  directRemotes: (B: Proc, since: number) => string[]
}

/** opportunistic mode: B's direct (hole-punched) connections, by their multiaddr */
function punchedRemotes (B: Proc, since: number): string[] {
  return B.filter(e => e.event === 'connection' && e.path === 'direct' && e.at >= since).map(e => String(e.remoteAddr))
}

/**
 * Runs one session from A to B, waits until it is direct and under way, applies the change to A's network, and
 * checks that the session resumed intact and went direct again, reaching A at its public address after the change.
 */
async function sessionThroughChange (lab: Lab, c: ChangeCase): Promise<void> {
  const { name } = c
  const B = c.agent('B', { role: 'responder', ...common }, `B-${name}`)
  let A: Proc | undefined
  try {
    const ready = await B.waitFor(e => e.event === 'ready', 20_000, 'ready')
    A = c.agent('A', { role: 'initiator', target: String(ready.peerId), ...common }, `A-${name}`)
    await A.waitFor(onDirectPath, 30_000, 'the session on the direct path')
    const before = await A.waitFor(e => e.event === 'progress' && Number(e.received) >= 1000, 30_000, '1000 messages received')

    const changedAt = Date.now()
    await c.change()
    const publicIp = c.newPublicIp()
    const directAgain = (e: Ev): boolean => e.event === 'session-path' && e.path === 'direct' && e.at >= changedAt
    const [ra, rb] = await Promise.all([waitResult(A, 120_000), waitResult(B, 120_000)])
    const back = A.find(directAgain)
    const punch = [...A.filter(e => e.event === 'hole-punch' && e.at >= changedAt), ...B.filter(e => e.event === 'hole-punch' && e.at >= changedAt)]
    const success = punch.find(e => e.outcome === 'success')
    console.log(`${name}: changed A's network at A's progress ${JSON.stringify({ sent: before.sent, received: before.received })}; ` +
      `the session was direct again ${back === undefined ? 'never' : `${back.at - changedAt} ms`} after the change ` +
      `(hole punch ${success === undefined ? 'none succeeded' : `succeeded ${success.at - changedAt} ms after the change, ${String(success.msSinceRelay)} ms after its relayed connection`})\n` +
      `${timeline(A, changedAt)}\n${timeline(B, changedAt)}`)

    expect(Number(before.received)).toBeLessThan(COUNT)
    expect(intact(ra, COUNT), brief(ra)).toBe(true)
    expect(intact(rb, COUNT), brief(rb)).toBe(true)
    expect(ra.resumingEvents.length, 'the session lost its path and resumed').toBeGreaterThanOrEqual(1)
    expect(back, `A's session direct again after the change\n${timeline(A, changedAt)}\n${timeline(B, changedAt)}`).toBeDefined()
    // B's direct connection after the change reaches A at its new public address
    expect(c.directRemotes(B, changedAt)).toContainEqual(expect.stringContaining(publicIp))
    expect(ra.bytesReceived > 0 && rb.stats.bytesViaDirect > 0).toBe(true)
  } finally {
    await Promise.all([A?.stop(), B.stop()])
  }
}

describe.skipIf(!isRoot)('network change in the NAT lab (real processes; A, B and a spare NAT C, all cone)', () => {
  // slot C is the NAT A moves behind (its own peer namespace stays empty)
  const lab = new Lab({ prefix: `nm-netchange${process.pid % 100000}-`, peers: { A: 'cone', B: 'cone', C: 'cone' } })

  beforeAll(async () => {
    await lab.start()
  }, 90_000)

  afterAll(async () => {
    await lab.down()
  }, 60_000)

  it('a peer whose link moves behind another NAT mid-transfer keeps its session (nothing lost) and is direct again, over its new public address', async () => {
    expect(lab.topo.natWanIp('A')).not.toBe(lab.topo.natWanIp('C'))
    await sessionThroughChange(lab, {
      name: 'move',
      agent: (slot, init, name) => lab.agent(slot, init, name),
      change: async () => { await lab.topo.movePeer('A', 'C') },
      newPublicIp: () => lab.topo.natWanIp('A'),
      directRemotes: punchedRemotes
    })
    expect(lab.topo.natWanIp('A')).toBe(lab.topo.natWanIp('C'))
  }, 180_000)

  it('a peer whose NAT restarts with new mappings mid-transfer keeps its session (nothing lost) and is direct again, over the new mapping', async () => {
    const old = lab.topo.natWanIp('A')
    await sessionThroughChange(lab, {
      name: 'nat-restart',
      agent: (slot, init, name) => lab.agent(slot, init, name),
      change: async () => { await lab.topo.restartNat('A') },
      newPublicIp: () => lab.topo.natWanIp('A'),
      directRemotes: punchedRemotes
    })
    expect(lab.topo.natWanIp('A')).not.toBe(old)
  }, 180_000)
})

describe.skipIf(!isRoot)('network change in ice mode (real processes, real coturn; A, B and a spare NAT C, all cone)', () => {
  const lab = new IceLab({ prefix: `nm-netchangei${process.pid % 10000}-`, peers: { A: 'cone', B: 'cone', C: 'cone' } })

  beforeAll(async () => {
    await lab.start()
  }, 90_000)

  afterAll(async () => {
    await lab.down()
  }, 60_000)

  it('a peer whose link moves behind another NAT restarts ICE: the session resumes (nothing lost) and is on a new WebRTC pair to its new public address', async () => {
    await sessionThroughChange(lab, {
      name: 'ice-move',
      agent: (slot, init, name) => lab.iceAgent(slot, init, name),
      change: async () => { await lab.topo.movePeer('A', 'C') },
      newPublicIp: () => lab.topo.natWanIp('A'),
      // the candidate pair B's WebRTC connections after the change use: the remote one is A's new mapping
      directRemotes: (B, since) => B.filter(e => e.event === 'ice-path' && e.at >= since).map(e => String(e.remote))
    })
  }, 180_000)
})
