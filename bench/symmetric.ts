// Birthday punch benchmark: peers behind a cone NAT and a symmetric NAT (nftables `masquerade fully-random`) in
// the namespace lab, 50 trials in each direction, fresh peers and NAT tables every trial. It times the step from
// the relayed connection to the direct one and counts what each success cost: the symmetric side's extra sockets,
// and the datagrams both sides sent (the cone side's probes plus the symmetric side's sprays).
// Run as root after building:  tsc -p tsconfig.json && node bench/symmetric.ts   (NM_BENCH_TRIALS overrides 50)
// The last line of stdout is one JSON object:
//   { "bench": "symmetric", "trials": 50, "coneToSymmetric": {...}, "symmetricToCone": {...} }
import { existsSync } from 'node:fs'
import { DEFAULT_CLI, median, percentile, runTrials } from '../dist/lab/index.js'
import type { NatFlavour, TrialResult } from '../dist/lab/index.js'

const TRIALS = Number(process.env.NM_BENCH_TRIALS ?? 50)

function fail (message: string): never {
  process.stderr.write(`bench/symmetric: ${message}\n`)
  process.exit(1)
}

if (process.getuid?.() !== 0) fail('needs root: the NAT lab creates network namespaces and nftables rules (run: sudo node bench/symmetric.ts)')
if (!existsSync(DEFAULT_CLI)) fail(`${DEFAULT_CLI} is missing: build first (tsc -p tsconfig.json)`)
if (!Number.isInteger(TRIALS) || TRIALS < 1) fail(`NM_BENCH_TRIALS must be a positive integer, got ${process.env.NM_BENCH_TRIALS}`)

const controller = new AbortController()
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { controller.abort() })

interface DirectionFigures {
  direct: number
  trials: number
  directRate: number
  relayToDirectMs: { median: number | null, p95: number | null }
  perSuccess: { socketsMedian: number | null, datagramsMedian: number | null, datagramsP95: number | null }
}

async function direction (a: NatFlavour, b: NatFlavour): Promise<DirectionFigures> {
  process.stdout.write(`\n${a} NAT -> ${b} NAT, ${TRIALS} trials\n  trial  path     strategy  relay->direct ms  sockets  datagrams\n`)
  const run = await runTrials({
    a,
    b,
    trials: TRIALS,
    signal: controller.signal,
    onTrial: (t: TrialResult) => {
      const cost = t.holePunch.cost
      process.stdout.write(`  ${String(t.trial).padStart(5)}  ${t.path.padEnd(7)}  ${(t.holePunch.strategy ?? '-').padEnd(8)}  ` +
        `${String(t.msRelayToDirect ?? '-').padStart(16)}  ${String(cost?.sockets ?? '-').padStart(7)}  ${String(cost?.probes ?? '-').padStart(9)}\n`)
      if (t.error !== undefined) process.stderr.write(`trial ${t.trial}: ${t.error}\n`)
    }
  })
  const direct = run.trials.filter(t => t.directOk)
  const ms = direct.flatMap(t => t.msRelayToDirect === undefined ? [] : [t.msRelayToDirect])
  const sockets = direct.flatMap(t => t.holePunch.cost === undefined ? [] : [t.holePunch.cost.sockets])
  const datagrams = direct.flatMap(t => t.holePunch.cost === undefined ? [] : [t.holePunch.cost.probes])
  const figures: DirectionFigures = {
    direct: direct.length,
    trials: run.trials.length,
    directRate: run.trials.length === 0 ? 0 : Number((direct.length / run.trials.length).toFixed(3)),
    relayToDirectMs: { median: median(ms) ?? null, p95: percentile(ms, 95) ?? null },
    perSuccess: { socketsMedian: median(sockets) ?? null, datagramsMedian: median(datagrams) ?? null, datagramsP95: percentile(datagrams, 95) ?? null }
  }
  process.stdout.write(`  direct ${figures.direct}/${figures.trials}; relay->direct median ${figures.relayToDirectMs.median ?? '-'} ms, ` +
    `p95 ${figures.relayToDirectMs.p95 ?? '-'} ms; per success ${figures.perSuccess.socketsMedian ?? '-'} sockets, ` +
    `${figures.perSuccess.datagramsMedian ?? '-'} datagrams (median), ${figures.perSuccess.datagramsP95 ?? '-'} (p95)\n`)
  return figures
}

const coneToSymmetric = await direction('cone', 'symmetric')
const symmetricToCone = await direction('symmetric', 'cone')
process.stdout.write(JSON.stringify({ bench: 'symmetric', trials: TRIALS, coneToSymmetric, symmetricToCone }) + '\n')
if (controller.signal.aborted) process.exitCode = 130
