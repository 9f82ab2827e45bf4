/**
 * Sessions "in the field": two test/lab/session-agent.ts peers in the namespace lab, with a WAN emulator
 * (lab/wan-link.py) on every NAT's internet link. One cell = one pair of NAT setups at one round-trip time and loss
 * rate; each transfer has fresh agents (new identities) and flushed NAT tables. Shared by bench/field.ts and
 * test/lab/field.test.ts.
 *
 * The round-trip time is the relayed path's: each NAT's internet link delays rttMs / 4 each way, so peer -> gateway
 * -> peer and back crosses links for rttMs in total, and so does a direct path between two sites (a same-site
 * pair's LAN path crosses no emulated link). lossPercent applies to every emulated link in each direction.
 */
import { brief, intact, Lab, waitResult } from './session-lab.ts'
import type { AgentInit, Ev, Proc } from './session-lab.ts'
import type { NatFlavour } from '../../dist/lab/nat.js'
import type { TopologyOptions } from '../../dist/lab/topology.js'
import type { PunchPhase } from '../../dist/dcutr/index.js'

/** A dials B in every pair: A is the session's initiator */
export const FIELD_PAIRS = {
  'cone-cone': { peers: { A: 'cone', B: 'cone' } },
  'cone-symmetric': { peers: { A: 'cone', B: 'symmetric' } },
  'symmetric-cone': { peers: { A: 'symmetric', B: 'cone' } },
  /** two hosts on one LAN behind one cone NAT */
  'same-nat': { peers: { A: 'cone', B: 'cone' }, sameNatAs: { B: 'A' } },
  /** the dialler's NAT drops all UDP: TCP only */
  'udp-blocked-cone': { peers: { A: 'udp-blocked', B: 'cone' } }
} as const satisfies Record<string, { peers: Record<'A' | 'B', NatFlavour>, sameNatAs?: Record<string, string> }>

export type FieldPair = keyof typeof FIELD_PAIRS
export const FIELD_PAIR_NAMES = Object.keys(FIELD_PAIRS) as FieldPair[]

export interface FieldCellOptions {
  pair: FieldPair
  rttMs: number
  lossPercent: number
  transfers: number
  /** namespace prefix (nm-...) */
  prefix: string
  /**
   * each side sends (paced, ~200 messages/s) until it has been on the direct path this long, or for maxSendMs in
   * all; default 1000 / 6000 + 10 RTT
   */
  stopAfterSwitchMs?: number
  maxSendMs?: number
  log?: (line: string) => void
}

export interface FieldTransfer {
  n: number
  /** the session carried data on the direct path: it moved there, or opened there (early dials can beat it) */
  direct: boolean
  /** a hole punch reported success (a direct connection existed), whether or not the session moved */
  punched: boolean
  /** the successful punch's msSinceRelay: relayed connection -> direct connection */
  relayToDirectMs: number | null
  /** each side's successful hole-punch phases (ms since its own relayed connection opened; see PunchPhase) */
  phases: Partial<Record<'A' | 'B', PunchPhases>>
  /** A's first direct connection -> its session on the direct path (the session move) */
  moveMs: number | null
  /** A's release (its daemon starting, modules already loaded; B already holding its reservation) -> session open */
  openMs: number | null
  /** both directions: every message arrived once, in order, uncorrupted, no error */
  intact: boolean
  /** the transfer never produced both results (an agent crashed or hung): counted as not intact */
  failed: boolean
  /** what went wrong; for a transfer that stayed relayed, the session's stats and every hole-punch event */
  error?: string
}

export interface FieldCellSummary {
  pair: FieldPair
  rttMs: number
  lossPercent: number
  transfers: number
  direct: number
  punched: number
  intact: number
  /** transfers without both results (see FieldTransfer.failed) */
  failed: number
  relayToDirectMs: { median: number | null, p95: number | null }
  /** per side, the median of each punch phase over the direct transfers */
  phases: Partial<Record<'A' | 'B', PunchPhases>>
  /** median session move (see FieldTransfer.moveMs) */
  moveMs: number | null
  /** the same, divided by rttMs (null at 0 ms) */
  relayToDirectRtts: { median: number | null, p95: number | null }
  openMs: { median: number | null, p95: number | null }
}

export interface FieldCellResult {
  summary: FieldCellSummary
  transfers: FieldTransfer[]
}

/** the cell's topology: the pair's NATs, and an emulator on each NAT's internet link when it delays or drops */
export function fieldTopology (pair: FieldPair, rttMs: number, lossPercent: number): Pick<TopologyOptions, 'peers' | 'sameNatAs' | 'wan'> {
  const def: { peers: Record<string, NatFlavour>, sameNatAs?: Record<string, string> } = FIELD_PAIRS[pair]
  const link = { delayMs: rttMs / 4, lossPercent }
  const owners = Object.keys(def.peers).filter((slot) => def.sameNatAs?.[slot] === undefined)
  return {
    peers: { ...def.peers },
    ...(def.sameNatAs !== undefined ? { sameNatAs: { ...def.sameNatAs } } : {}),
    ...(rttMs > 0 || lossPercent > 0 ? { wan: Object.fromEntries(owners.map((slot) => [slot, link])) } : {})
  }
}

/** nearest-rank percentile; null for no values */
function pct (values: number[], p: number): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((x, y) => x - y)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p / 100 * sorted.length) - 1))] as number
}

export type PunchPhases = Partial<Record<PunchPhase, number>>

function phasesOf (proc: Proc): PunchPhases | undefined {
  const punch = proc.find((x) => x.event === 'hole-punch' && x.outcome === 'success')
  return punch?.phases as PunchPhases | undefined
}

/** the session's move to the direct path, from the direct connection; null when it moved never, or opened there */
function moveOf (proc: Proc): number | null {
  const direct = proc.find((e) => e.event === 'connection' && e.path === 'direct')
  const moved = proc.find((e) => e.event === 'session-path' && e.path === 'direct')
  return typeof direct?.t === 'number' && typeof moved?.t === 'number' ? moved.t - direct.t : null
}

function punchOf (procs: Proc[]): Ev | undefined {
  for (const p of procs) {
    const e = p.find((x) => x.event === 'hole-punch' && x.outcome === 'success')
    if (e !== undefined) return e
  }
  return undefined
}

export async function runFieldCell (opts: FieldCellOptions): Promise<FieldCellResult> {
  const { pair, rttMs, lossPercent } = opts
  const log = opts.log ?? (() => {})
  const { peers, ...topology } = fieldTopology(pair, rttMs, lossPercent)
  const send: AgentInit = {
    role: 'responder',
    count: 1_000_000,
    paceEvery: 1,
    paceMs: 5,
    stopAfterSwitchMs: opts.stopAfterSwitchMs ?? 1000,
    maxSendMs: opts.maxSendMs ?? 6000 + 10 * rttMs
  }
  const resultTimeoutMs = (send.maxSendMs as number) + 30_000
  const lab = new Lab({ prefix: opts.prefix, peers, topology })
  const transfers: FieldTransfer[] = []
  try {
    await lab.start()
    // agents load their modules gated, while the previous transfer runs
    const spawnPair = (n: number): { A: Proc, B: Proc } => ({
      B: lab.agent('B', { ...send, seed: n, gate: true }, `B#${n}`),
      A: lab.agent('A', { ...send, role: 'initiator', seed: n, gate: true }, `A#${n}`)
    })
    let next: { A: Proc, B: Proc } | undefined = spawnPair(1)
    for (let n = 1; n <= opts.transfers; n++) {
      const { A, B } = next ?? spawnPair(n)
      next = undefined
      const t: FieldTransfer = { n, direct: false, punched: false, relayToDirectMs: null, phases: {}, moveMs: null, openMs: null, intact: false, failed: true }
      try {
        await Promise.all([lab.flush('A'), lab.flush('B')])
        await Promise.all([A.waitFor((e) => e.event === 'agent-loaded', 30_000, 'agent-loaded'), B.waitFor((e) => e.event === 'agent-loaded', 30_000, 'agent-loaded')])
        B.release()
        const ready = await B.waitFor((e) => e.event === 'ready', 30_000, 'ready')
        const releasedAt = Date.now()
        A.release({ target: ready.peerId })
        await A.waitFor((e) => e.event === 'session-open', resultTimeoutMs, 'session-open')
        // the next transfer's agents load their modules while this one runs
        if (n < opts.transfers) next = spawnPair(n + 1)
        const [ra, rb] = await Promise.all([waitResult(A, resultTimeoutMs), waitResult(B, resultTimeoutMs)])
        t.failed = false
        const open = A.find((e) => e.event === 'session-open')
        t.openMs = open === undefined ? null : open.at - releasedAt
        const punch = punchOf([A, B])
        t.punched = punch !== undefined
        t.relayToDirectMs = typeof punch?.msSinceRelay === 'number' ? punch.msSinceRelay : null
        for (const [slot, proc] of [['A', A], ['B', B]] as const) {
          const phases = phasesOf(proc)
          if (phases !== undefined) t.phases[slot] = phases
        }
        t.moveMs = moveOf(A)
        t.direct = (ra.stats.migrations >= 1 || ra.startPath === 'direct') && ra.stats.bytesViaDirect > 0
        t.intact = intact(ra, rb.sent) && intact(rb, ra.sent)
        if (!t.intact) t.error = `A: ${brief(ra)} (B sent ${rb.sent}); B: ${brief(rb)} (A sent ${ra.sent})`
        else if (!t.direct) t.error = `relayed: ${brief(ra)}; hole punches: ${JSON.stringify([...A.filter((e) => e.event === 'hole-punch'), ...B.filter((e) => e.event === 'hole-punch')])}`
      } catch (err) {
        t.error = `${(err as Error).message}\n${A.describe()}\n${B.describe()}`
      } finally {
        // the results are in: a graceful shutdown (about a second each) would only delay the next transfer
        await Promise.all([A.stop(0), B.stop(0)])
      }
      log(`  ${pair} rtt ${rttMs} ms loss ${lossPercent} %: transfer ${n}/${opts.transfers} ${t.direct ? 'direct' : 'relayed'}${t.punched && !t.direct ? ' (punched, never moved)' : ''}, ` +
        `relay->direct ${t.relayToDirectMs ?? '-'} ms, open ${t.openMs ?? '-'} ms, ${t.intact ? 'intact' : t.failed ? 'FAILED' : 'NOT INTACT'}${t.error !== undefined ? `\n    ${(t.error.split('\n')[0] ?? '').slice(0, 600)}` : ''}`)
      transfers.push(t)
    }
  } finally {
    await lab.down()
  }
  const ms = transfers.flatMap((t) => t.direct && t.relayToDirectMs !== null ? [t.relayToDirectMs] : [])
  const opens = transfers.flatMap((t) => t.openMs === null ? [] : [t.openMs])
  const inRtts = (v: number | null): number | null => v === null || rttMs === 0 ? null : Number((v / rttMs).toFixed(1))
  const relayToDirectMs = { median: pct(ms, 50), p95: pct(ms, 95) }
  const directs = transfers.filter((t) => t.direct)
  const phases: FieldCellSummary['phases'] = {}
  for (const slot of ['A', 'B'] as const) {
    const names = [...new Set(directs.flatMap((t) => Object.keys(t.phases[slot] ?? {})))] as PunchPhase[]
    if (names.length > 0) phases[slot] = Object.fromEntries(names.map((name) => [name, pct(directs.flatMap((t) => t.phases[slot]?.[name] ?? []), 50) ?? 0]))
  }
  return {
    transfers,
    summary: {
      pair,
      rttMs,
      lossPercent,
      transfers: transfers.length,
      direct: transfers.filter((t) => t.direct).length,
      punched: transfers.filter((t) => t.punched).length,
      intact: transfers.filter((t) => t.intact).length,
      failed: transfers.filter((t) => t.failed).length,
      relayToDirectMs,
      phases,
      moveMs: pct(directs.flatMap((t) => t.moveMs ?? []), 50),
      relayToDirectRtts: { median: inRtts(relayToDirectMs.median), p95: inRtts(relayToDirectMs.p95) },
      openMs: { median: pct(opens, 50), p95: pct(opens, 95) }
    }
  }
}
