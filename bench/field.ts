/**
 * Traversal and sessions where edge nodes really live: NAT pairs x round-trip times x loss, through the lab's WAN
 * emulator (lab/wan-link.py on every NAT's internet link; see test/helpers/field-lab.ts for what RTT and loss mean).
 *
 * Per cell, `--transfers` sessions between fresh test/lab/session-agent.ts peers (paced ~200 messages/s each way,
 * until a second on the direct path): direct k/N (the session moved and carried data directly), punched k/N (a
 * hole punch succeeded, moved or not), relayed -> direct (the punch's ms since the relayed connection) median and
 * p95 in ms and in RTTs, session open time (A's start -> session open; B already holds its reservation) median and
 * p95, intact k/N, failed (transfers that never produced both results: an agent crashed or hung); under each row the
 * punch's phases per side (median ms and RTTs since that side's relayed connection opened: DCUtR stream negotiated,
 * CONNECT read, SYNC sent/read, the overlay HELLO answered, direct connection open) and the session move.
 *
 *   node bench/field.ts [--transfers 5] [--cells PATTERN[,PATTERN...]] [--prefix nm-fb]
 *     PATTERN = pair[:rtt[:loss]], each part a value or *; pairs: cone-cone, cone-symmetric, symmetric-cone,
 *     same-nat, udp-blocked-cone; rtts 0, 100, 300 (ms); losses 0, 2 (%). E.g. --cells 'same-nat,*:100:2'
 *
 * Needs root, python3 and a built dist/ (`npm run bench:field` builds first). The last stdout line is one JSON
 * object: { bench: 'field', transfers, cells: [per-cell summary] }. Exit code 1 if any session was not intact.
 */
import { parseArgs } from 'node:util'
import { positiveInteger } from './lib/args.ts'
import { FIELD_PAIR_NAMES, runFieldCell } from '../test/helpers/field-lab.ts'
import type { FieldCellSummary, FieldPair } from '../test/helpers/field-lab.ts'

const RTTS = [0, 100, 300]
const LOSSES = [0, 2]

const { values: args } = parseArgs({
  options: {
    transfers: { type: 'string', default: '5' },
    cells: { type: 'string', default: '*' },
    /** lab namespace prefix (nm- and up to 3 characters), before the pid and cell number */
    prefix: { type: 'string', default: 'nm-fb' }
  }
})
const transfers = positiveInteger(args, 'transfers')
// namespace and interface names are built from it, and Linux caps interface names at 15 characters
if (!/^nm-[a-z0-9]{0,3}$/.test(args.prefix)) {
  console.error(`--prefix: "${args.prefix}" must be nm- and up to 3 lower-case letters or digits`)
  process.exit(2)
}

interface Cell { pair: FieldPair, rttMs: number, lossPercent: number }

function parseCells (spec: string): Cell[] {
  const patterns = spec.split(',').map((p) => p.trim()).filter((p) => p !== '').map((p) => {
    const [pair = '*', rtt = '*', loss = '*', ...rest] = p.split(':')
    const ok = rest.length === 0 && (pair === '*' || (FIELD_PAIR_NAMES as string[]).includes(pair)) &&
      (rtt === '*' || RTTS.includes(Number(rtt))) && (loss === '*' || LOSSES.includes(Number(loss)))
    if (!ok) {
      console.error(`--cells: bad pattern "${p}" (pair[:rtt[:loss]]; pairs ${FIELD_PAIR_NAMES.join(', ')}; rtts ${RTTS.join(', ')}; losses ${LOSSES.join(', ')}; * for any)`)
      process.exit(2)
    }
    return { pair, rtt, loss }
  })
  const all = FIELD_PAIR_NAMES.flatMap((pair) => RTTS.flatMap((rttMs) => LOSSES.map((lossPercent) => ({ pair, rttMs, lossPercent }))))
  return all.filter((c) => patterns.some((p) => (p.pair === '*' || p.pair === c.pair) && (p.rtt === '*' || Number(p.rtt) === c.rttMs) &&
    (p.loss === '*' || Number(p.loss) === c.lossPercent)))
}

const cells = parseCells(args.cells)
if (cells.length === 0) {
  console.error('--cells matched no cell')
  process.exit(2)
}
if (process.getuid?.() !== 0) {
  console.error('bench:field needs root (network namespaces, nftables, the WAN emulator\'s raw sockets)')
  process.exit(2)
}

const fmt = (v: number | null, unit = ''): string => v === null ? '-' : `${v}${unit}`
const row = (s: FieldCellSummary): string => [
  s.pair.padEnd(16), `${s.rttMs}`.padStart(4), `${s.lossPercent}`.padStart(5),
  `${s.direct}/${s.transfers}`.padStart(7), `${s.punched}/${s.transfers}`.padStart(7),
  `${fmt(s.relayToDirectMs.median)} / ${fmt(s.relayToDirectMs.p95)}`.padStart(15),
  `${fmt(s.relayToDirectRtts.median)} / ${fmt(s.relayToDirectRtts.p95)}`.padStart(12),
  `${fmt(s.openMs.median)} / ${fmt(s.openMs.p95)}`.padStart(15),
  `${s.intact}/${s.transfers}`.padStart(7), `${s.failed}`.padStart(6)
].join('  ')
/** the punch's steps per side (medians, ms since that side's relayed connection opened) and the session move */
const PHASE_ORDER = ['stream', 'connect', 'sync', 'answered', 'direct'] as const
const breakdown = (s: FieldCellSummary): string => {
  const inRtt = (ms: number): string => s.rttMs === 0 ? `${ms} ms` : `${ms} ms (${(ms / s.rttMs).toFixed(1)} RTT)`
  const side = (slot: 'A' | 'B', role: string): string => {
    const phases = s.phases[slot]
    if (phases === undefined) return `${slot} (${role}): -`
    return `${slot} (${role}): ` + PHASE_ORDER.flatMap((name) => phases[name] === undefined ? [] : [`${name} ${inRtt(phases[name])}`]).join(', ')
  }
  return `  phases, median ms since each side's relayed connection: ${side('B', 'DCUtR initiator')}; ${side('A', 'responder')}; ` +
    `session move (A's direct connection -> session on it) ${s.moveMs === null ? '-' : inRtt(s.moveMs)}`
}
const HEADER = `${'pair'.padEnd(16)}  ${'rtt'.padStart(4)}  ${'loss%'.padStart(5)}  ${'direct'.padStart(7)}  ${'punched'.padStart(7)}  ` +
  `${'r->d ms med/p95'.padStart(15)}  ${'RTTs med/p95'.padStart(12)}  ${'open ms med/p95'.padStart(15)}  ${'intact'.padStart(7)}  ${'failed'.padStart(6)}`

const started = Date.now()
const summaries: FieldCellSummary[] = []
let notIntact = 0
console.log(`bench:field: ${cells.length} cell(s) x ${transfers} transfer(s)`)
for (const [i, cell] of cells.entries()) {
  const prefix = `${args.prefix}${process.pid % 10000}x${i}-`
  try {
    const { summary } = await runFieldCell({ ...cell, transfers, prefix, log: (line) => { console.log(line) } })
    summaries.push(summary)
    notIntact += summary.transfers - summary.intact
    console.log(`${HEADER}\n${row(summary)}\n${breakdown(summary)}`)
  } catch (err) {
    console.error(`cell ${cell.pair} rtt ${cell.rttMs} loss ${cell.lossPercent}: ${(err as Error).message}`)
    notIntact += transfers
  }
}
console.log(`\n${HEADER}\n${summaries.map((s) => `${row(s)}\n${breakdown(s)}`).join('\n')}\n(${((Date.now() - started) / 1000).toFixed(0)} s)`)
if (notIntact > 0) process.exitCode = 1
console.log(JSON.stringify({ bench: 'field', transfers, cells: summaries }))
