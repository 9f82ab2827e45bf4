/**
 * What moving a session from the relay to the direct path costs, and what it saves.
 *
 * Lab part (needs root; the namespace NAT lab, one `natmesh gateway` process, peers A and B behind cone NATs, each
 * a test/lab/session-agent.ts process): real processes, real NAT traversal, the relay's real queueing. Chosen over
 * loopback because there every node shares one event loop, which hides exactly the delays a switch is made of.
 *
 *   1. switch gap: `--switches` sessions one after the other between the same two agents (A aborts every connection to
 *      B between rounds, so each session starts relayed and its peers punch again; round 1 punches through fresh NAT
 *      mappings, later rounds through mappings that still exist). Both sides stream mixed-size verified messages
 *      (1 B–64 KiB, log-uniform; see the agent) at a steady `--rate` each way and stop 600 ms after their switch. Per
 *      switch and direction: the largest gap between two consecutive deliveries whose interval overlaps ±500 ms of the
 *      receiver's own switch; the switch's gap is the larger of the two directions.
 *   2. relay share: one session of `--mib` MiB (64 KiB messages, A → B, full speed) from fresh processes: how much of
 *      it crossed the gateway before the session went direct (A's bytesViaRelay / (bytesViaRelay + bytesViaDirect),
 *      counted as written, so frames resent on the direct path after the switch count twice).
 *   3. loss at the switch without sessions: a plain libp2p stream on the relayed connection (length-prefixed numbered
 *      messages both ways, paced like part 1), and both peers close the relayed connection the moment the direct one
 *      opens, as stock @libp2p/dcutr does (`relayedConnection.close()` right after its dial). Lost = messages the
 *      sender handed to the stream that never arrived. The same with sessions instead of plain streams: lost should
 *      be 0.
 *
 * Loopback part (any user; two peers and a gateway in this process on 127.0.0.1, see bench/lib/upgrade-overhead.ts):
 *
 *   4. session overhead: a `--overhead-mib` transfer in 64 KiB messages as a session and as a raw libp2p stream on the
 *      same direct connection, `--overhead-runs` times each, alternating; medians; throughput and CPU-per-byte ratios.
 *
 * Imports the compiled project from dist/: `npm run bench:upgrade` builds first. The last stdout line is one JSON
 * object (see report()); figures of a part that could not run are null. Exit code 1 if a part failed or any session
 * lost, duplicated or reordered a message.
 *
 *   node bench/upgrade.ts [--switches 50] [--mib 64] [--loss-rounds 5] [--rate 200] [--overhead-mib 64]
 *                         [--overhead-runs 5] [--no-lab]
 */
import { parseArgs } from 'node:util'
import { Lab, quantile, sleep } from '../test/helpers/session-lab.ts'
import type { AgentInit, PlainResult, Proc, SessionResult, StreamResult } from '../test/helpers/session-lab.ts'
import { measureOverhead } from './lib/upgrade-overhead.ts'
import type { OverheadResult } from './lib/upgrade-overhead.ts'
import { positiveInteger } from './lib/args.ts'

const { values: args } = parseArgs({
  options: {
    switches: { type: 'string', default: '50' },
    mib: { type: 'string', default: '64' },
    'loss-rounds': { type: 'string', default: '5' },
    /** messages per second each way in parts 1 and 3 (mean message ≈ 5.9 KiB) */
    rate: { type: 'string', default: '200' },
    'overhead-mib': { type: 'string', default: '64' },
    'overhead-runs': { type: 'string', default: '5' },
    'no-lab': { type: 'boolean', default: false }
  }
})
const switches = positive('switches')
const mib = positive('mib')
const lossRounds = positive('loss-rounds')
const rate = positive('rate')
const overheadMiB = positive('overhead-mib')
const overheadRuns = positive('overhead-runs')
const STOP_AFTER_SWITCH_MS = 600
/** a round whose punch fails still ends */
const MAX_SEND_MS = 8000

const WATCHDOG_MS = 600_000
setTimeout(() => {
  console.error(`upgrade bench: still running after ${WATCHDOG_MS / 1000} s; giving up`)
  process.exit(2)
}, WATCHDOG_MS).unref()

const log = (line: string): void => { console.log(line) }
const started = Date.now()
const errors: string[] = []
const timings: Record<string, number> = {}

interface SwitchRow { round: number, gapToA: number | null, gapToB: number | null, punchMs: number | null, switchAt: number | null, lost: number, bad: number }
const switchRows: SwitchRow[] = []
let relayShare: { share: number, relayBytes: number, directBytes: number, receiverShare: number, punchMs: number | null, switchAt: number | null, transferMs: number, intact: boolean } | null = null
interface LossRow { kind: 'plain' | 'session', round: number, sentAB: number, lostAB: number, sentBA: number, lostBA: number, bad: number, note: string }
const lossRows: LossRow[] = []
let overhead: OverheadResult | null = null

function positive (name: keyof typeof args): number {
  return positiveInteger(args, name)
}

/** pacing for `rate` messages per second: a 5 ms sleep after every rate/200 messages */
function pace (): Pick<AgentInit, 'paceEvery' | 'paceMs'> {
  return { paceEvery: Math.max(1, Math.round(rate / 200)), paceMs: 5 }
}

/** anomalies a receiver saw (duplicates, gaps, corruption) */
function bad (r: StreamResult): number {
  return r.duplicates + r.gaps + r.corrupt
}

/**
 * Drives an initiator agent with `rounds` and `roundGate` against a responder: collects both results of each round
 * before letting the initiator start the next one.
 */
async function runRounds (A: Proc, B: Proc, rounds: number, kind: 'session-result' | 'plain-result', onRound: (round: number, a: StreamResult, b: StreamResult) => void, bRoundOffset = 0): Promise<void> {
  for (let round = 1; round <= rounds; round++) {
    const a = await A.waitFor(e => e.event === kind && e.round === round, 30_000, `${kind} of round ${round}`) as StreamResult
    const b = await B.waitFor(e => e.event === kind && e.round === round + bRoundOffset, 30_000, `B's ${kind} of round ${round}`) as StreamResult
    onRound(round, a, b)
    if (round < rounds) {
      await A.waitFor(e => e.event === 'round-wait' && e.round === round + 1, 10_000, `round-wait ${round + 1}`)
      A.child.stdin?.write('next\n')
    }
  }
}

function punchOf (procs: Proc[], since: number): number | null {
  for (const p of procs) {
    const e = p.find(x => x.event === 'hole-punch' && x.outcome === 'success' && x.at >= since && typeof x.msSinceRelay === 'number')
    if (e !== undefined) return e.msSinceRelay as number
  }
  return null
}

/**
 * the switch parts measure the relay -> direct switch itself: at the lab's round trip the circuit's early dials
 * would have the direct path before most sessions open, and those would never switch
 */
const NO_EARLY_DIAL = { earlyDial: false }

async function labPart (): Promise<void> {
  const lab = new Lab({ prefix: `nm-b${process.pid % 100000}-` })
  try {
    let t = Date.now()
    await lab.start()
    timings.labSetupMs = Date.now() - t
    log(`lab up in ${timings.labSetupMs} ms: gateway ${lab.gatewayId} at ${lab.topo.gatewayIp(0)}, A behind ${lab.topo.natWanIp('A')}, B behind ${lab.topo.natWanIp('B')} (cone NATs)`)

    // 1. switch gaps
    t = Date.now()
    {
      const common: AgentInit = { role: 'responder', count: 1_000_000, stopAfterSwitchMs: STOP_AFTER_SWITCH_MS, maxSendMs: MAX_SEND_MS, peer: NO_EARLY_DIAL, ...pace() }
      const B = lab.agent('B', common, 'B-switch')
      const ready = await B.waitFor(e => e.event === 'ready', 20_000, 'ready')
      const A = lab.agent('A', { ...common, role: 'initiator', target: String(ready.peerId), rounds: switches, roundGate: true }, 'A-switch')
      let last = Date.now()
      await runRounds(A, B, switches, 'session-result', (round, a, b) => {
        const ra = a as SessionResult
        const row: SwitchRow = {
          round,
          gapToA: ra.switchGapMs,
          gapToB: b.switchGapMs,
          punchMs: punchOf([A, B], last),
          switchAt: ra.switchAt,
          lost: (b.sent - a.good) + (a.sent - b.good),
          bad: bad(a) + bad(b) + (a.error !== null || b.error !== null ? 1 : 0)
        }
        last = Date.now()
        switchRows.push(row)
        if (row.lost !== 0 || row.bad !== 0) errors.push(`switch round ${round}: lost ${row.lost}, anomalies/errors ${row.bad}: A ${JSON.stringify(a.anomalies)} ${JSON.stringify(a.error)} B ${JSON.stringify(b.anomalies)} ${JSON.stringify(b.error)}`)
        if (round === 1 || round % 10 === 0 || row.switchAt === null) {
          log(`  switch ${round}: punch ${row.punchMs ?? '-'} ms after the relay, switch at ${row.switchAt ?? 'never'} ms, gap to A ${row.gapToA ?? '-'} ms, to B ${row.gapToB ?? '-'} ms (${a.received}+${b.received} messages)`)
        }
      })
      await Promise.all([A.stop(), B.stop()])
    }
    timings.switchesMs = Date.now() - t

    // 2. relay share of one big session
    t = Date.now()
    {
      await Promise.all([lab.flush('A'), lab.flush('B')])
      const count = mib * 16
      const B = lab.agent('B', { role: 'responder', count: 0, expectCount: count, fixedSize: 65536 }, 'B-64MiB')
      const ready = await B.waitFor(e => e.event === 'ready', 20_000, 'ready')
      const since = Date.now()
      const A = lab.agent('A', { role: 'initiator', count, expectCount: 0, fixedSize: 65536, target: String(ready.peerId) }, 'A-64MiB')
      const a = await A.waitFor(e => e.event === 'session-result', 120_000, 'session-result') as SessionResult
      const b = await B.waitFor(e => e.event === 'session-result', 30_000, 'session-result') as SessionResult
      const relayBytes = a.stats.bytesViaRelay
      const directBytes = a.stats.bytesViaDirect
      relayShare = {
        share: relayBytes / (relayBytes + directBytes),
        relayBytes,
        directBytes,
        receiverShare: b.stats.bytesViaRelay / (b.stats.bytesViaRelay + b.stats.bytesViaDirect),
        punchMs: punchOf([A, B], since),
        switchAt: a.switchAt,
        transferMs: a.transferMs,
        intact: b.ok && b.good === count && a.ok
      }
      if (!relayShare.intact) errors.push(`${mib} MiB session not intact: A ${JSON.stringify(a.error)} B received ${b.received}/${count} good ${b.good} ${JSON.stringify(b.anomalies)} ${JSON.stringify(b.error)}`)
      log(`  ${mib} MiB session: ${(a.transferMs / 1000).toFixed(2)} s, punch ${relayShare.punchMs ?? '-'} ms after the relay, switch at ${a.switchAt ?? 'never'} ms; ` +
        `A wrote ${(relayBytes / 1048576).toFixed(1)} MiB to the relay and ${(directBytes / 1048576).toFixed(1)} MiB direct (resent frames ${a.stats.framesResent}); B took ${(b.stats.bytesViaRelay / 1048576).toFixed(1)} MiB of it from the relay`)
      await Promise.all([A.stop(), B.stop()])
    }
    timings.relayShareMs = Date.now() - t

    // 3. loss when the relayed connection is closed at the switch, stock-dcutr style: plain streams, then sessions
    t = Date.now()
    {
      await Promise.all([lab.flush('A'), lab.flush('B')])
      const common: AgentInit = { role: 'responder', count: 1_000_000, stopAfterSwitchMs: STOP_AFTER_SWITCH_MS, maxSendMs: MAX_SEND_MS, closeRelayedOnDirect: true, peer: NO_EARLY_DIAL, ...pace() }
      const B = lab.agent('B', common, 'B-loss')
      const ready = await B.waitFor(e => e.event === 'ready', 20_000, 'ready')
      let offset = 0
      for (const kind of ['plain', 'session'] as const) {
        const A = lab.agent('A', { ...common, role: 'initiator', target: String(ready.peerId), rounds: lossRounds, roundGate: true, plain: kind === 'plain' }, `A-loss-${kind}`)
        await runRounds(A, B, lossRounds, kind === 'plain' ? 'plain-result' : 'session-result', (round, a, b) => {
          const row: LossRow = {
            kind,
            round,
            sentAB: a.sent,
            lostAB: a.sent - b.received,
            sentBA: b.sent,
            lostBA: b.sent - a.received,
            bad: bad(a) + bad(b),
            note: kind === 'plain'
              ? `stream ended: A ${(a as PlainResult).closeError ?? 'cleanly'}, B ${(b as PlainResult).closeError ?? 'cleanly'}`
              : `${(a as SessionResult).stats.migrations} migration(s), ${(a as SessionResult).resumingEvents.length} resume(s); ${a.error === null && b.error === null ? 'no error' : `errors ${JSON.stringify(a.error)} ${JSON.stringify(b.error)}`}`
          }
          lossRows.push(row)
          if (kind === 'session' && (row.lostAB !== 0 || row.lostBA !== 0 || row.bad !== 0 || a.error !== null || b.error !== null)) {
            errors.push(`session with the relayed connection closed at the switch, round ${round}: lost A→B ${row.lostAB}, B→A ${row.lostBA}, anomalies ${row.bad}; ${row.note}`)
          }
          log(`  ${kind.padEnd(7)} round ${round}: A→B sent ${row.sentAB} lost ${row.lostAB}; B→A sent ${row.sentBA} lost ${row.lostBA}; anomalies ${row.bad}; ${row.note}`)
        }, offset)
        offset += lossRounds
        await A.stop()
      }
      await B.stop()
    }
    timings.lossMs = Date.now() - t
  } finally {
    await lab.down()
  }
}

function fmt (x: number | null | undefined, digits = 1): string {
  return x === null || x === undefined || Number.isNaN(x) ? '-' : x.toFixed(digits)
}

function round (x: number | null | undefined, digits: number): number | null {
  return x === null || x === undefined || !Number.isFinite(x) ? null : Number(x.toFixed(digits))
}

function report (): void {
  const perSwitch = switchRows.flatMap(r => r.gapToA === null && r.gapToB === null ? [] : [Math.max(r.gapToA ?? 0, r.gapToB ?? 0)])
  const toA = switchRows.flatMap(r => r.gapToA === null ? [] : [r.gapToA])
  const toB = switchRows.flatMap(r => r.gapToB === null ? [] : [r.gapToB])
  const punch = switchRows.flatMap(r => r.punchMs === null ? [] : [r.punchMs])
  const plain = lossRows.filter(r => r.kind === 'plain')
  const sess = lossRows.filter(r => r.kind === 'session')
  const sum = (rows: LossRow[], f: (r: LossRow) => number): number => rows.reduce((s, r) => s + f(r), 0)

  console.log('')
  console.log(`upgrade bench (${((Date.now() - started) / 1000).toFixed(1)} s; ${Object.entries(timings).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)} s`).join(', ')})`)
  const rows: Array<[string, string]> = [
    [`delivery gap around the switch, ${perSwitch.length}/${switches} switches (ms)`, `median ${fmt(quantile(perSwitch, 0.5))}, p95 ${fmt(quantile(perSwitch, 0.95))}, max ${fmt(quantile(perSwitch, 1))}`],
    ['  B→A deliveries at A / A→B at B (ms)', `median ${fmt(quantile(toA, 0.5))} / ${fmt(quantile(toB, 0.5))}, p95 ${fmt(quantile(toA, 0.95))} / ${fmt(quantile(toB, 0.95))}`],
    ['  hole punch after the relayed connection (ms)', `median ${fmt(quantile(punch, 0.5), 0)}, p95 ${fmt(quantile(punch, 0.95), 0)} (load ${rate} msg/s each way)`],
    [`share of a ${mib} MiB session that crossed the gateway`, relayShare === null ? '-' : `${fmt(relayShare.share * 100)} % (${(relayShare.relayBytes / 1048576).toFixed(1)} of ${((relayShare.relayBytes + relayShare.directBytes) / 1048576).toFixed(1)} MiB written; ${fmt(relayShare.receiverShare * 100)} % of what B took in)`],
    ['session vs raw stream, direct connection: throughput', overhead === null ? '-' : `${fmt(overhead.sessionMBps)} vs ${fmt(overhead.rawMBps)} MB/s = ${fmt(overhead.throughputRatio, 3)}x`],
    ['session vs raw stream, direct connection: CPU per MiB', overhead === null ? '-' : `${fmt(overhead.sessionCpuMsPerMiB, 2)} vs ${fmt(overhead.rawCpuMsPerMiB, 2)} ms = ${fmt(overhead.cpuRatio, 3)}x`],
    [`lost when the relay is closed at the switch, plain stream (${plain.length} rounds)`, `${sum(plain, r => r.lostAB + r.lostBA)} of ${sum(plain, r => r.sentAB + r.sentBA)} messages (A→B ${sum(plain, r => r.lostAB)}, B→A ${sum(plain, r => r.lostBA)})`],
    [`lost when the relay is closed at the switch, session (${sess.length} rounds)`, `${sum(sess, r => r.lostAB + r.lostBA)} of ${sum(sess, r => r.sentAB + r.sentBA)} messages`]
  ]
  const width = Math.max(...rows.map(r => r[0].length))
  for (const [k, v] of rows) console.log(`${k.padEnd(width)}  ${v}`)
  for (const e of errors) console.log(`ERROR: ${e}`)

  console.log(JSON.stringify({
    bench: 'upgrade',
    switches: perSwitch.length,
    switchGapMs: { median: round(quantile(perSwitch, 0.5), 1), p95: round(quantile(perSwitch, 0.95), 1), max: round(quantile(perSwitch, 1), 1) },
    switchGapToAMs: { median: round(quantile(toA, 0.5), 1), p95: round(quantile(toA, 0.95), 1) },
    switchGapToBMs: { median: round(quantile(toB, 0.5), 1), p95: round(quantile(toB, 0.95), 1) },
    punchMs: { median: round(quantile(punch, 0.5), 0), p95: round(quantile(punch, 0.95), 0) },
    loadMsgPerSec: rate,
    relayShare: relayShare === null ? null : { sizeMiB: mib, share: round(relayShare.share, 4), receiverShare: round(relayShare.receiverShare, 4), relayBytes: relayShare.relayBytes, directBytes: relayShare.directBytes, punchMs: relayShare.punchMs, switchAtMs: relayShare.switchAt },
    overhead: overhead === null ? null : { sizeMiB: overheadMiB, sessionMBps: round(overhead.sessionMBps, 2), rawMBps: round(overhead.rawMBps, 2), throughputRatio: round(overhead.throughputRatio, 3), sessionCpuMsPerMiB: round(overhead.sessionCpuMsPerMiB, 3), rawCpuMsPerMiB: round(overhead.rawCpuMsPerMiB, 3), cpuRatio: round(overhead.cpuRatio, 3) },
    lossAtSwitch: {
      rounds: lossRounds,
      plainLost: plain.length === 0 ? null : sum(plain, r => r.lostAB + r.lostBA),
      plainSent: plain.length === 0 ? null : sum(plain, r => r.sentAB + r.sentBA),
      sessionLost: sess.length === 0 ? null : sum(sess, r => r.lostAB + r.lostBA),
      sessionSent: sess.length === 0 ? null : sum(sess, r => r.sentAB + r.sentBA)
    },
    errors: errors.length
  }))
}

let failed = false
try {
  if (args['no-lab']) {
    log('lab part skipped (--no-lab)')
  } else if (process.getuid?.() !== 0) {
    log('lab part skipped: the NAT lab needs root (network namespaces); run as root for the switch, relay-share and loss figures')
  } else {
    try {
      await labPart()
    } catch (err) {
      failed = true
      errors.push(`lab part: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  const t = Date.now()
  try {
    overhead = await measureOverhead({ sizeMiB: overheadMiB, runs: overheadRuns, chunkKiB: 64, timeoutMs: 60_000, log })
  } catch (err) {
    failed = true
    errors.push(`overhead part: ${err instanceof Error ? err.message : String(err)}`)
  }
  timings.overheadMs = Date.now() - t
} finally {
  await sleep(0)
  report()
}
process.exit(failed || errors.length > 0 ? 1 : 0)
