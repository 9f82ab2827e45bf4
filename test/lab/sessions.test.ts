/**
 * Sessions between real peer processes in the namespace NAT lab: one gateway (a `natmesh gateway` process), peers A
 * (initiator) and B (responder) behind cone NATs, each a test/lab/session-agent.ts process that streams verified
 * messages of mixed sizes (1 B–64 KiB, log-uniform; see the agent's file comment) both ways at once.
 *
 * Needs root (namespaces, nftables, conntrack) and a built dist/ (`tsc -p tsconfig.json`; `npm test` does it).
 * NM_SESSION_TRIALS overrides the number of upgrade trials (default 50), for local runs.
 */
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { brief, intact, Lab, onDirectPath, quantile, sleep, waitResult } from '../helpers/session-lab.ts'
import type { Ev, Proc, SessionResult } from '../helpers/session-lab.ts'

const isRoot = process.getuid?.() === 0
const TRIALS = Number(process.env.NM_SESSION_TRIALS ?? 50)
const COUNT = 2000
/** the failure modes a peer restart may surface as; anything else (or nothing) is a failure */
const RESTART_CODES = ['PEER_RESTARTED', 'UNKNOWN_SESSION', 'PATH_LOST']
/** the restart test's grace period after a lost path */
const RESTART_GRACE_MS = 5000
/**
 * the worst a restart may take to surface: the silence that declares a path dead (10 one-second heartbeats),
 * then the grace period, plus 3 s of slack for a loaded machine. It surfaces sooner when the resume reaches the
 * restarted peer (UNKNOWN_SESSION, ~12 s); the gateway may still relay to the dead peer's old connection, and
 * then PATH_LOST after the grace period is the answer.
 */
const RESTART_BOUND_MS = 10 * 1000 + RESTART_GRACE_MS + 3000

function agentErrors (...procs: Proc[]): Ev[] {
  return procs.flatMap(p => p.filter(e => e.event === 'agent-error'))
}

function eventsSince (p: Proc, since: number): string {
  return p.filter(e => e.event !== 'progress' && e.at >= since)
    .map(e => `  ${p.name} +${e.at - since} ms ${e.event}${typeof e.path === 'string' ? ` ${e.path}` : ''}${typeof e.reason === 'string' ? ` (${e.reason})` : ''}${e.error != null ? ` ${JSON.stringify(e.error)}` : ''}`)
    .join('\n')
}

describe.skipIf(!isRoot)('sessions in the NAT lab (real processes; A and B behind cone NATs)', () => {
  const lab = new Lab({ prefix: `nm-s${process.pid % 100000}-` })

  beforeAll(async () => {
    await lab.start()
  }, 60_000)

  afterAll(async () => {
    await lab.down()
  }, 60_000)

  it(`upgrade under load: ${TRIALS} trials, ${COUNT} messages each way at full speed while the hole punch happens; nothing lost, duplicated or reordered, every session migrates`, async () => {
    const started = Date.now()
    const failures: string[] = []
    const rows: Array<{ n: number, ms: number, readyMs: number, transferMs: number, switchAt: number | null, punchMs: number | null, gapA: number | null, gapB: number | null, relayShare: number, resent: number }> = []
    let verifiedBA = 0
    let verifiedAB = 0
    // agents are started gated: they load their modules while the previous trial's agents shut down. No early
    // dials: at the lab's round trip they make the direct path before the session opens, and this is about the move
    const peer = { earlyDial: false }
    const spawnPair = (n: number): { A: Proc, B: Proc } => ({
      B: lab.agent('B', { role: 'responder', count: COUNT, seed: n, gate: true, peer }, `B#${n}`),
      A: lab.agent('A', { role: 'initiator', count: COUNT, seed: n, gate: true, peer }, `A#${n}`)
    })
    let next = spawnPair(1)
    for (let n = 1; n <= TRIALS; n++) {
      const t0 = Date.now()
      const { A, B } = next
      try {
        await lab.ensureGateway()
        await Promise.all([lab.flush('A'), lab.flush('B')])
        B.release()
        const ready = await B.waitFor(e => e.event === 'ready', 20_000, 'ready')
        const readyMs = Date.now() - t0
        A.release({ target: ready.peerId })
        const [ra, rb] = await Promise.all([waitResult(A, 90_000), waitResult(B, 90_000)])
        verifiedBA += ra.good
        verifiedAB += rb.good
        const punch: Ev[] = [...A.filter(e => e.event === 'hole-punch').map(e => ({ ...e, by: 'A' })), ...B.filter(e => e.event === 'hole-punch').map(e => ({ ...e, by: 'B' }))]
        const success = punch.find(e => e.outcome === 'success')
        const row = {
          n,
          ms: Date.now() - t0,
          readyMs,
          transferMs: ra.transferMs,
          switchAt: ra.switchAt,
          punchMs: typeof success?.msSinceRelay === 'number' ? success.msSinceRelay : null,
          gapA: ra.switchGapMs,
          gapB: rb.switchGapMs,
          relayShare: ra.stats.bytesViaRelay / Math.max(1, ra.stats.bytesViaRelay + ra.stats.bytesViaDirect),
          resent: ra.stats.framesResent + rb.stats.framesResent
        }
        rows.push(row)
        console.log(`trial ${n}: ${row.ms} ms (B ready ${readyMs}, transfer ${Math.round(ra.transferMs)}), punch ${row.punchMs ?? '-'} ms after the relay, ` +
          `switch at ${row.switchAt ?? '-'} ms, gap A ${row.gapA ?? '-'} / B ${row.gapB ?? '-'} ms, relay share ${row.relayShare.toFixed(2)}, resent ${row.resent}`)
        const problems: string[] = []
        if (!intact(ra, COUNT)) problems.push(`A (B→A stream): ${brief(ra)}`)
        if (!intact(rb, COUNT)) problems.push(`B (A→B stream): ${brief(rb)}`)
        if (ra.stats.migrations < 1 || ra.stats.bytesViaDirect <= 0) {
          problems.push(`no migration to the direct path: started on ${ra.startPath}, ${brief(ra)}; hole punches: ` +
            JSON.stringify(punch.map(e => ({ by: e.by, outcome: e.outcome, attempts: e.attempts, msSinceRelay: e.msSinceRelay, reason: e.reason, atMs: e.at - t0 }))))
        }
        const errors = agentErrors(A, B)
        if (errors.length > 0) problems.push(`agent errors: ${JSON.stringify(errors)}`)
        if (problems.length > 0) failures.push(`trial ${n}:\n  ${problems.join('\n  ')}`)
      } catch (err) {
        failures.push(`trial ${n}: ${(err as Error).message}\n${A.describe()}\n${B.describe()}\n${lab.gateway?.describe() ?? ''}`)
      } finally {
        if (n < TRIALS) next = spawnPair(n + 1)
        // the results are in: a graceful shutdown (about a second each) would only delay the next trial
        await Promise.all([A.stop(0), B.stop(0)])
      }
    }
    const elapsed = Date.now() - started
    const col = (pick: (r: typeof rows[number]) => number | null): number[] => rows.flatMap(r => { const v = pick(r); return v === null ? [] : [v] })
    const stat = (values: number[]): string => `median ${quantile(values, 0.5)?.toFixed(1) ?? '-'} p95 ${quantile(values, 0.95)?.toFixed(1) ?? '-'} max ${quantile(values, 1)?.toFixed(1) ?? '-'}`
    console.log(`upgrade under load: ${rows.length}/${TRIALS} trials in ${(elapsed / 1000).toFixed(1)} s (${(elapsed / TRIALS / 1000).toFixed(2)} s per trial); ` +
      `${verifiedBA} messages B→A and ${verifiedAB} A→B verified; ${col(r => r.switchAt).length} trials migrated`)
    console.log(`  trial ms ${stat(col(r => r.ms))}; B ready ms ${stat(col(r => r.readyMs))}; transfer ms ${stat(col(r => r.transferMs))}`)
    console.log(`  hole punch ms after the relayed connection ${stat(col(r => r.punchMs))}; switch ms after open ${stat(col(r => r.switchAt))}`)
    console.log(`  delivery gap around the switch (±500 ms): at A ${stat(col(r => r.gapA))}, at B ${stat(col(r => r.gapB))}`)
    console.log(`  share of A's session bytes via the relay ${stat(col(r => r.relayShare))}; frames resent per trial ${stat(col(r => r.resent))}`)
    if (failures.length > 0) console.log(`FAILURES (${failures.length}):\n${failures.join('\n')}`)
    expect(failures).toEqual([])
    expect(verifiedBA).toBe(TRIALS * COUNT)
    expect(verifiedAB).toBe(TRIALS * COUNT)
  }, 1_200_000)

  it.each(['A', 'B'])('conntrack flushed on %s\'s NAT while the session is direct (mid-transfer): the transfer completes intact', async (slot) => {
    await lab.ensureGateway()
    const count = 3000
    // paced (about 2.4 MB/s each way), so the transfer is still running well after the switch
    const common = { count, paceEvery: 20, paceMs: 50, progressMs: 100 }
    const B = lab.agent('B', { role: 'responder', ...common }, `B-flush${slot}`)
    let A: Proc | undefined
    try {
      const ready = await B.waitFor(e => e.event === 'ready', 20_000, 'ready')
      A = lab.agent('A', { role: 'initiator', target: String(ready.peerId), ...common }, `A-flush${slot}`)
      await A.waitFor(onDirectPath, 30_000, 'the session on the direct path')
      await sleep(300)
      const before = A.filter(e => e.event === 'progress').at(-1)
      const flushedAt = Date.now()
      await lab.flush(slot)
      const [ra, rb] = await Promise.all([waitResult(A, 60_000), waitResult(B, 60_000)])
      console.log(`conntrack flush on ${slot}'s NAT at A's progress ${JSON.stringify({ sent: before?.sent, received: before?.received, path: before?.path })}; ` +
        `A finished ${ra.at - flushedAt} ms later; largest delivery gap A ${ra.maxGapMs} ms (at ${ra.maxGapAt}), B ${rb.maxGapMs} ms; resumes A ${ra.resumingEvents.length} B ${rb.resumingEvents.length}\n` +
        `${eventsSince(A, flushedAt)}\n${eventsSince(B, flushedAt)}`)
      expect(before?.path).toBe('direct')
      expect(Number(before?.received)).toBeLessThan(count)
      expect(intact(ra, count), brief(ra)).toBe(true)
      expect(intact(rb, count), brief(rb)).toBe(true)
      expect(agentErrors(A, B)).toEqual([])
    } finally {
      await Promise.all([A?.stop(), B.stop()])
    }
  }, 120_000)

  it('peer restart: the responder is killed mid-session and restarted with the same identity; the initiator\'s session fails with a clear SessionError, promptly', async () => {
    await lab.ensureGateway()
    const identityFile = join(lab.dir, 'restart-B.key')
    const common = { count: 3000, paceEvery: 20, paceMs: 50, progressMs: 100 }
    const B1 = lab.agent('B', { role: 'responder', identityFile, ...common }, 'B-first')
    const B2 = lab.agent('B', { role: 'responder', identityFile, ...common, gate: true }, 'B-restarted')
    let A: Proc | undefined
    try {
      const ready = await B1.waitFor(e => e.event === 'ready', 20_000, 'ready')
      // a short grace period: if no path comes back, PATH_LOST is the answer
      A = lab.agent('A', { role: 'initiator', target: String(ready.peerId), ...common, sessions: { gracePeriodMs: RESTART_GRACE_MS } }, 'A-restart')
      await A.waitFor(onDirectPath, 30_000, 'the session on the direct path')
      await A.waitFor(e => e.event === 'progress' && Number(e.received) >= 500, 30_000, '500 messages received')
      const killedAt = Date.now()
      B1.kill('SIGKILL')
      await B1.exited
      B2.release()
      const ready2 = await B2.waitFor(e => e.event === 'ready', 20_000, 'ready after the restart')
      const readyAt = Date.now()
      expect(ready2.peerId).toBe(ready.peerId)
      const ra = await waitResult(A, RESTART_BOUND_MS + 30_000)
      const closed = A.find(e => e.event === 'session-closed')
      console.log(`peer restart: B back (same peer id) ${readyAt - killedAt} ms after the kill; A's session closed ${closed === undefined ? 'never' : `${closed.at - killedAt} ms`} after the kill ` +
        `with ${JSON.stringify(ra.error)}; A's send/receive ${ra.stuck.length === 0 ? 'returned' : `STUCK (${ra.stuck.join(', ')})`}; result ${ra.at - killedAt} ms after the kill\n${eventsSince(A, killedAt)}`)
      expect(closed, 'the session must end').toBeDefined()
      expect(ra.error?.name).toBe('SessionError')
      expect(RESTART_CODES).toContain(ra.error?.code)
      expect((closed as Ev).at - killedAt).toBeLessThan(RESTART_BOUND_MS)
      // the application must hear about it: a send() blocked on a full buffer and the iterator both end
      expect(ra.stuck, 'send() / the iterator still pending 3 s after the session failed').toEqual([])
      expect({ duplicates: ra.duplicates, gaps: ra.gaps, corrupt: ra.corrupt }, 'whatever arrived before the failure arrived in order, once').toEqual({ duplicates: 0, gaps: 0, corrupt: 0 })
    } finally {
      await Promise.all([A?.stop(), B1.stop(), B2.stop()])
    }
  }, 120_000)

  it('gateway killed (SIGKILL) mid-stream while the session is relayed, restarted ~1 s later with the same identity and ports: the session resumes, every message arrives once, in order', async () => {
    await lab.ensureGateway()
    const count = 2000
    const peer = { mode: 'relay-only', reconnectInitialDelayMs: 100, reconnectMaxDelayMs: 1000 }
    const common = { count, paceEvery: 20, paceMs: 50, progressMs: 100, peer }
    const B = lab.agent('B', { role: 'responder', ...common }, 'B-gwkill')
    let A: Proc | undefined
    try {
      const ready = await B.waitFor(e => e.event === 'ready', 20_000, 'ready')
      A = lab.agent('A', { role: 'initiator', target: String(ready.peerId), ...common }, 'A-gwkill')
      const before = await A.waitFor(e => e.event === 'progress' && Number(e.received) >= 300, 30_000, '300 messages received')
      const killedAt = Date.now()
      lab.gateway?.kill('SIGKILL')
      await lab.gateway?.exited
      await sleep(1000)
      const restartMs = await lab.startGateway()
      const gatewayBackAt = Date.now()
      const [ra, rb] = await Promise.all([waitResult(A, 90_000), waitResult(B, 90_000)])
      const resuming = A.find(e => e.event === 'session-resuming' && e.at >= killedAt)
      const back = A.find(e => e.event === 'session-path' && e.at >= killedAt)
      console.log(`gateway kill at A's progress ${JSON.stringify({ sent: before.sent, received: before.received })}; gateway back ${gatewayBackAt - killedAt} ms after the kill ` +
        `(restart took ${restartMs} ms); A noticed the loss ${resuming === undefined ? 'never' : `${resuming.at - killedAt} ms`} after the kill, resumed on the ${String(back?.path)} ` +
        `${back === undefined ? 'never' : `${back.at - killedAt} ms`} after it; finished ${ra.at - killedAt} ms after it; resent A ${ra.stats.framesResent} B ${rb.stats.framesResent}\n` +
        `${eventsSince(A, killedAt)}\n${eventsSince(B, killedAt)}`)
      expect(Number(before.received)).toBeLessThan(count)
      expect(intact(ra, count), brief(ra)).toBe(true)
      expect(intact(rb, count), brief(rb)).toBe(true)
      expect(ra.resumingEvents.length, 'the session lost its path and resumed').toBeGreaterThanOrEqual(1)
      expect(ra.stats.bytesViaDirect + rb.stats.bytesViaDirect).toBe(0)
      expect(agentErrors(A, B)).toEqual([])
    } finally {
      await Promise.all([A?.stop(), B.stop()])
    }
  }, 150_000)
})
