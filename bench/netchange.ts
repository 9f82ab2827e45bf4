/**
 * Network change benchmark, in the namespace NAT lab (needs root and a built dist/): peers A and B behind cone NATs
 * hold one long session (paced, both ways, verified), direct after the first hole punch. Then, one after another,
 * A's network changes under the running process and the time until its session is direct again is measured:
 *
 *   move        A's namespace link moves to the LAN of another NAT (C and D in turn): new LAN address, new public one
 *   natRestart  A's NAT restarts with new mappings (a new WAN address, conntrack flushed)
 *
 * The anchor, from the same run: the session's first move from the relay to the direct path (ms since it opened).
 * At the end both sides must have received exactly what the other sent.
 *
 *   node bench/netchange.ts [--moves 10] [--restarts 10]
 *
 * Last line of stdout: {"bench":"netchange","move":{…},"natRestart":{…},"firstUpgradeMs":…,"intact":…}
 */
import { parseArgs } from 'node:util'
import { positiveInteger } from './lib/args.ts'
import { intact, Lab, onDirectPath, quantile, waitResult } from '../test/helpers/session-lab.ts'
import type { Ev, Proc } from '../test/helpers/session-lab.ts'

const { values: args } = parseArgs({ options: { moves: { type: 'string', default: '10' }, restarts: { type: 'string', default: '10' } } })
const MOVES = positiveInteger(args, 'moves')
const RESTARTS = positiveInteger(args, 'restarts')
/** the most one change may take to be direct again before the trial counts as failed */
const CHANGE_TIMEOUT_MS = 20_000

if (process.getuid?.() !== 0) {
  console.error('bench/netchange: needs root: the NAT lab creates network namespaces and nftables rules')
  process.exit(1)
}

interface Figures { n: number, direct: number, medianMs: number | null, p95Ms: number | null, maxMs: number | null, ratioToFirstUpgrade: number | null }

function figures (times: Array<number | null>, anchor: number | null): Figures {
  const ok = times.filter((t): t is number => t !== null)
  const median = quantile(ok, 0.5)
  return {
    n: times.length,
    direct: ok.length,
    medianMs: median,
    p95Ms: quantile(ok, 0.95),
    maxMs: quantile(ok, 1),
    ratioToFirstUpgrade: median === null || anchor === null || anchor <= 0 ? null : Math.round(median / anchor * 100) / 100
  }
}

function timeline (p: Proc, since: number): string {
  return p.filter(e => e.event !== 'progress' && e.at >= since)
    .map(e => `  ${p.name} +${e.at - since} ms ${e.event} ${JSON.stringify({ ...e, event: undefined, at: undefined, t: undefined }).slice(0, 300)}`)
    .join('\n')
}

/** applies `change` and returns how long until both sides' session is on the direct path again after it resumed (null: never) */
async function timeToDirect (A: Proc, B: Proc, change: () => Promise<void>): Promise<number | null> {
  const at = Date.now()
  await change()
  try {
    // the change has hit the session once A's session resumes; direct again is the move to the direct path after that
    const hit = await A.waitFor(e => e.event === 'session-resuming' && e.at >= at, CHANGE_TIMEOUT_MS, 'the session resuming')
    const direct = async (p: Proc): Promise<Ev> => p.waitFor(e => e.event === 'session-path' && e.path === 'direct' && e.at >= hit.at, CHANGE_TIMEOUT_MS, 'direct again')
    const [a, b] = await Promise.all([direct(A), direct(B)])
    return Math.max(a.at, b.at) - at
  } catch (err) {
    console.log(`no direct path within ${CHANGE_TIMEOUT_MS} ms: ${(err as Error).message.split('\n')[0] ?? ''}\n${timeline(A, at)}\n${timeline(B, at)}`)
    return null
  }
}

const lab = new Lab({ prefix: `nm-netchangeb${process.pid % 10000}-`, peers: { A: 'cone', B: 'cone', C: 'cone', D: 'cone' } })
try {
  await lab.start()
  // long enough for every change, paced to ~400 messages a second each way
  const send = { count: 10_000_000, maxSendMs: (MOVES + RESTARTS) * 8000 + 20_000, paceEvery: 20, paceMs: 50 }
  const B = lab.agent('B', { role: 'responder', ...send })
  const ready = await B.waitFor(e => e.event === 'ready', 20_000, 'ready')
  const A = lab.agent('A', { role: 'initiator', target: String(ready.peerId), ...send })
  const opened = await A.waitFor(e => e.event === 'session-open', 20_000, 'session-open')
  const first = await A.waitFor(onDirectPath, 20_000, 'the first direct path')
  const firstUpgradeMs = first.at - opened.at

  const moves: Array<number | null> = []
  for (let i = 0; i < MOVES; i++) {
    const to = i % 2 === 0 ? 'C' : 'D'
    const ms = await timeToDirect(A, B, async () => { await lab.topo.movePeer('A', to) })
    console.log(`move ${i + 1}/${MOVES} (A behind ${to}'s NAT, ${lab.topo.natWanIp('A')}): direct again after ${ms ?? '-'} ms`)
    moves.push(ms)
  }
  const restarts: Array<number | null> = []
  for (let i = 0; i < RESTARTS; i++) {
    const ms = await timeToDirect(A, B, async () => { await lab.topo.restartNat('A') })
    console.log(`NAT restart ${i + 1}/${RESTARTS} (A's NAT now at ${lab.topo.natWanIp('A')}): direct again after ${ms ?? '-'} ms`)
    restarts.push(ms)
  }
  const [ra, rb] = await Promise.all([waitResult(A, send.maxSendMs + 60_000), waitResult(B, send.maxSendMs + 60_000)])
  const ok = intact(ra, rb.sent) && intact(rb, ra.sent)
  console.log(`session: A received ${ra.received}/${rb.sent}, B ${rb.received}/${ra.sent}, resumed ${ra.resumingEvents.length} times, intact ${ok}`)
  console.log(JSON.stringify({ bench: 'netchange', move: figures(moves, firstUpgradeMs), natRestart: figures(restarts, firstUpgradeMs), firstUpgradeMs, intact: ok }))
} finally {
  await lab.down()
}
