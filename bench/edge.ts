/**
 * Traversal where edge nodes live, in the namespace NAT lab (needs root; real `natmesh gateway` and
 * test/lab/session-agent.ts processes): peers A and B behind their own cone NATs, U behind a UDP-blocking one, and
 * M, a second host on A's LAN behind A's NAT (test/helpers/same-site-lab.ts; the NAT does not hairpin). Per trial, each
 * with fresh processes and flushed NAT tables, one after the other:
 *
 *   same NAT   M accepts, A opens a session (paced messages both ways, until 300 ms after the switch): direct or
 *              not, over the LAN address or not, relayed -> direct (the hole-punch event's msSinceRelay) and when the
 *              session's first byte went direct (switchAt, ms after the session opened).
 *   cone-cone  the same from A to B: the anchor for the same-NAT figures.
 *   UDP blocked U opens a session to B: the time from U's `started` event to its session being open; the anchor is
 *              A's open time in the cone-cone trial, measured the same way.
 *
 * It also measures the LAN and WAN round trips with a UDP echo (M -> A, A -> gateway), so the same-NAT times can be
 * read in RTTs. Imports the compiled project from dist/: `npm run bench:edge` builds first. The last stdout line is
 * one JSON object. Exit code 1 when a session lost, duplicated or reordered a message.
 *
 *   node bench/edge.ts [--trials 10]
 */
import { parseArgs } from 'node:util'
import { intact, Lab, quantile, waitResult } from '../test/helpers/session-lab.ts'
import type { Ev, Proc } from '../test/helpers/session-lab.ts'
import { addLanMate } from '../test/helpers/same-site-lab.ts'
import type { LanMate } from '../test/helpers/same-site-lab.ts'
import { positiveInteger } from './lib/args.ts'

const { values: args } = parseArgs({ options: { trials: { type: 'string', default: '10' } } })
const trials = positiveInteger(args, 'trials')
const SEND = { count: 1_000_000, paceEvery: 1, paceMs: 10, fixedSize: 1024, stopAfterSwitchMs: 300, maxSendMs: 15_000 }

const log = (line: string): void => { console.log(line) }
const errors: string[] = []

interface PunchTrial { direct: boolean, lan: boolean, msSinceRelay: number | null, switchAt: number | null, openFromStartMs: number | null }

function openFromStart (p: Proc): number | null {
  const started = p.find(e => e.event === 'started')
  const open = p.find(e => e.event === 'session-open')
  return started === undefined || open === undefined ? null : Number(open.t) - Number(started.t)
}

function success (...procs: Proc[]): Ev | undefined {
  return procs.flatMap(p => p.filter(e => e.event === 'hole-punch' && e.outcome === 'success')).sort((a, b) => a.at - b.at)[0]
}

type Spawn = (name: string, command: string, args: string[]) => Proc

/** median UDP echo round trip from a client started by `from` to a one-line echo server started by `to` at `toIp` */
async function udpRtt (from: Spawn, to: Spawn, toIp: string, count = 50): Promise<number | null> {
  const server = to('echo', process.execPath, ['-e',
    "const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(m,r.port,r.address));s.bind(0,()=>console.log(JSON.stringify({event:'port',port:s.address().port})))"])
  try {
    const { port } = await server.waitFor(e => e.event === 'port', 10_000, 'the echo port')
    const client = from('ping', process.execPath, ['-e', `
      const s=require('dgram').createSocket('udp4');const rtts=[];let t=0
      const next=()=>{if(rtts.length>=${count}){console.log(JSON.stringify({event:'rtts',rtts}));process.exit(0)}t=performance.now();s.send('x',${Number(port)},'${toIp}')}
      s.on('message',()=>{rtts.push(performance.now()-t);next()});next()`])
    const result = await client.waitFor(e => e.event === 'rtts', 20_000, 'the echo round trips')
    return quantile(result.rtts as number[], 0.5)
  } finally {
    server.kill()
  }
}

async function sessionTrial (lab: Lab, responder: () => Proc, initiator: (target: string) => Proc, lanIps: string[]): Promise<PunchTrial> {
  const B = responder()
  let A: Proc | undefined
  try {
    const ready = await B.waitFor(e => e.event === 'ready', 20_000, 'ready')
    A = initiator(String(ready.peerId))
    const [ra, rb] = await Promise.all([waitResult(A, 60_000), waitResult(B, 60_000)])
    if (!intact(ra, rb.sent) || !intact(rb, ra.sent)) errors.push(`${A.name}/${B.name}: session not intact`)
    const hit = success(A, B)
    const remote = typeof hit?.remoteAddr === 'string' ? hit.remoteAddr : ''
    return {
      direct: hit !== undefined && ra.stats.bytesViaDirect > 0,
      lan: lanIps.some(ip => remote.startsWith(`/ip4/${ip}/udp/`)),
      msSinceRelay: typeof hit?.msSinceRelay === 'number' ? hit.msSinceRelay : null,
      switchAt: ra.switchAt,
      openFromStartMs: openFromStart(A)
    }
  } finally {
    await Promise.all([A?.stop(0), B.stop(0)])
  }
}

function summary (rows: PunchTrial[], lanRttMs: number | null): Record<string, number | null> {
  const col = (pick: (r: PunchTrial) => number | null): number[] => rows.flatMap(r => { const v = pick(r); return v === null ? [] : [v] })
  const median = (values: number[]): number | null => quantile(values, 0.5)
  const inRtts = (ms: number | null): number | null => ms === null || lanRttMs === null || lanRttMs <= 0 ? null : Math.round(ms / lanRttMs)
  const punch = col(r => r.msSinceRelay)
  const switches = col(r => r.switchAt)
  return {
    trials: rows.length,
    direct: rows.filter(r => r.direct).length,
    overLan: rows.filter(r => r.lan).length,
    medianMsRelayToDirect: median(punch),
    p95MsRelayToDirect: quantile(punch, 0.95),
    medianMsToFirstDirectByte: median(switches),
    p95MsToFirstDirectByte: quantile(switches, 0.95),
    medianFirstDirectByteInLanRtts: inRtts(median(switches)),
    medianOpenFromStartMs: median(col(r => r.openFromStartMs))
  }
}

const lab = new Lab({ prefix: `nm-be${process.pid % 100000}-`, peers: { A: 'cone', B: 'cone', U: 'udp-blocked' } })
let mate: LanMate | undefined
let failed = false
const sameNat: PunchTrial[] = []
const coneCone: PunchTrial[] = []
const udpBlocked: PunchTrial[] = []
let lanRttMs: number | null = null
let wanRttMs: number | null = null
try {
  if (process.getuid?.() !== 0) throw new Error('the NAT lab needs root (network namespaces, nftables, conntrack)')
  await lab.start()
  mate = await addLanMate(lab, 'A')
  const lanMate = mate
  const inNs = (ns: string): Spawn => (name, command, spawnArgs) => lab.spawnProcess(name, ns, command, spawnArgs)
  lanRttMs = await udpRtt(lanMate.spawnProcess, inNs(lab.topo.peer('A')), lab.topo.peerIp('A'))
  wanRttMs = await udpRtt(inNs(lab.topo.peer('A')), inNs(lab.topo.gateway(0)), lab.topo.gatewayIp(0))
  log(`UDP round trips: LAN (M -> A) median ${lanRttMs?.toFixed(3) ?? '-'} ms, A -> gateway median ${wanRttMs?.toFixed(3) ?? '-'} ms`)
  const lanIps = [lab.topo.peerIp('A'), lanMate.ip]
  for (let n = 1; n <= trials; n++) {
    await Promise.all(['A', 'B', 'U'].map(async slot => { await lab.flush(slot) }))
    const same = await sessionTrial(lab, () => lanMate.agent({ role: 'responder', ...SEND, seed: n }, `M#${n}`),
      target => lab.agent('A', { role: 'initiator', target, ...SEND, seed: n }, `A#${n}`), lanIps)
    const cone = await sessionTrial(lab, () => lab.agent('B', { role: 'responder', ...SEND, seed: n }, `B#${n}`),
      target => lab.agent('A', { role: 'initiator', target, ...SEND, seed: n }, `A->B#${n}`), lanIps)
    const blocked = await sessionTrial(lab, () => lab.agent('B', { role: 'responder', count: 50, seed: n }, `B-u#${n}`),
      target => lab.agent('U', { role: 'initiator', target, count: 50, seed: n, requirePublicAddress: false }, `U#${n}`), lanIps)
    sameNat.push(same)
    coneCone.push(cone)
    udpBlocked.push(blocked)
    log(`trial ${n}: same NAT ${same.lan ? 'LAN' : same.direct ? 'direct (not LAN)' : 'relay'} ${same.msSinceRelay ?? '-'} ms / first direct byte ${same.switchAt ?? '-'} ms; ` +
      `cone-cone ${cone.direct ? 'direct' : 'relay'} ${cone.msSinceRelay ?? '-'} ms / ${cone.switchAt ?? '-'} ms; ` +
      `open from start: UDP-blocked ${blocked.openFromStartMs ?? '-'} ms, cone ${cone.openFromStartMs ?? '-'} ms`)
  }
} catch (err) {
  failed = true
  errors.push(err instanceof Error ? err.message : String(err))
} finally {
  await mate?.remove()
  await lab.down()
}
const same = summary(sameNat, lanRttMs)
const cone = summary(coneCone, lanRttMs)
const blocked = summary(udpBlocked, lanRttMs)
const ratio = (a: number | null | undefined, b: number | null | undefined): number | null => a == null || b == null || b === 0 ? null : Number((a / b).toFixed(2))
log(`same NAT: direct ${same.direct}/${same.trials} (over the LAN ${same.overLan}), relayed -> direct median ${same.medianMsRelayToDirect} ms p95 ${same.p95MsRelayToDirect} ms, ` +
  `first direct byte median ${same.medianMsToFirstDirectByte} ms after the session opened`)
log(`cone-cone: direct ${cone.direct}/${cone.trials}, relayed -> direct median ${cone.medianMsRelayToDirect} ms, first direct byte median ${cone.medianMsToFirstDirectByte} ms`)
log(`session open from start: UDP-blocked median ${blocked.medianOpenFromStartMs} ms p95 ${quantile(udpBlocked.flatMap(r => r.openFromStartMs ?? []), 0.95)} ms; cone median ${cone.medianOpenFromStartMs} ms`)
for (const e of errors) log(`error: ${e}`)
console.log(JSON.stringify({
  trials,
  lanRttMs,
  wanRttMs,
  sameNat: same,
  coneCone: { trials: cone.trials, direct: cone.direct, medianMsRelayToDirect: cone.medianMsRelayToDirect, medianMsToFirstDirectByte: cone.medianMsToFirstDirectByte },
  udpBlockedOpenFromStartMs: { median: blocked.medianOpenFromStartMs, p95: quantile(udpBlocked.flatMap(r => r.openFromStartMs ?? []), 0.95) },
  coneOpenFromStartMs: cone.medianOpenFromStartMs,
  ratios: {
    sameNatToConeConeRelayToDirect: ratio(same.medianMsRelayToDirect, cone.medianMsRelayToDirect),
    udpBlockedToConeOpen: ratio(blocked.medianOpenFromStartMs, cone.medianOpenFromStartMs)
  },
  errors
}))
process.exit(failed || errors.length > 0 ? 1 : 0)
