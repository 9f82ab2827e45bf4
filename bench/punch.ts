// Hole-punch benchmark: 20 trials of two peers behind cone NATs in the namespace lab, timing the step from the
// relayed connection to the direct one. Run as root after building:  tsc -p tsconfig.json && node bench/punch.ts
// (Node >= 22.18 runs this file as is: it uses only erasable TypeScript syntax.)
// The last line of stdout is one JSON object, for CI to pick up:
//   { "bench": "punch", "trials": 20, "direct": n, "medianMs": x, "p95Ms": y }
import { existsSync } from 'node:fs'
import { DEFAULT_CLI, runTrials } from '../dist/lab/index.js'
import type { TrialResult } from '../dist/lab/index.js'

const TRIALS = 20

function fail (message: string): never {
  process.stderr.write(`bench/punch: ${message}\n`)
  process.exit(1)
}

if (process.getuid?.() !== 0) {
  fail('needs root: the NAT lab creates network namespaces and nftables rules (run: sudo node bench/punch.ts)')
}
if (!existsSync(DEFAULT_CLI)) fail(`${DEFAULT_CLI} is missing: build first (tsc -p tsconfig.json)`)

const cell = (v: number | undefined, digits = 0): string => v === undefined ? '-' : v.toFixed(digits)
const columns = ['trial', 'path', 'relay->direct ms', 'relay rtt ms', 'direct rtt ms', 'trial ms']
const widths = columns.map((c) => Math.max(c.length, 8))
const row = (values: string[]): string => values.map((v, i) => v.padStart(widths[i] ?? 8)).join('  ')

process.stdout.write(`hole punch, cone NAT -> cone NAT, ${TRIALS} trials (fresh peers and NAT tables each)\n`)
process.stdout.write(row(columns) + '\n')

const controller = new AbortController()
for (const sig of ['SIGINT', 'SIGTERM'] as const) process.once(sig, () => { controller.abort() })

const run = await runTrials({
  a: 'cone',
  b: 'cone',
  trials: TRIALS,
  signal: controller.signal,
  onTrial: (t: TrialResult) => {
    process.stdout.write(row([String(t.trial), t.path, cell(t.msRelayToDirect), cell(t.relayRttMs, 1), cell(t.directRttMs, 1), String(t.durationMs)]) + '\n')
    if (t.error !== undefined) process.stderr.write(`trial ${t.trial}: ${t.error}\n`)
  }
})

const s = run.summary
process.stdout.write(`direct ${s.directOk}/${s.trials}, relay ${s.relayOk}/${s.trials}; relay->direct median ` +
  `${s.medianMsRelayToDirect ?? '-'} ms, p95 ${s.p95MsRelayToDirect ?? '-'} ms\n`)
process.stdout.write(JSON.stringify({
  bench: 'punch',
  trials: s.trials,
  direct: s.directOk,
  medianMs: s.medianMsRelayToDirect,
  p95Ms: s.p95MsRelayToDirect
}) + '\n')
if (controller.signal.aborted) process.exitCode = 130
