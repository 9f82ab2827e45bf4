/**
 * How heavy a peer daemon is on a small edge box: time from process spawn to its first relay reservation, and
 * its resident memory once idle, against hyperswarm doing the equivalent (spawn → announced on the DHT).
 *
 *   natmesh    `natmesh peer --json` as a user starts it (dist/cli, default settings, NAT detection against the
 *              gateway's STUN ports), pointed at one gateway on 127.0.0.1 (its own process); timed from spawn to
 *              the `reservation` event on stdout
 *   hyperswarm a node joining one topic as a server on a local hyperdht testnet (3 nodes, in this process),
 *              timed from spawn to its announce being flushed (bench/lib/hyperswarm-announce.ts)
 *
 * --starts starts each, one after the other, each with a fresh identity (natmesh's key files are made before the
 * clock starts, as a daemon restart finds them). Each process stays up, idle, for --idle-s after its event, then
 * its RSS (/proc/PID/status VmRSS) is read and it is stopped. Medians; the ratios are against hyperswarm.
 *
 * Imports the compiled project from dist/: run `tsc -p tsconfig.json` first (`npm run bench:footprint` does).
 *
 *   node bench/footprint.ts [--starts 10] [--idle-s 10] [--baseline-cli OTHER/dist/cli/index.js]
 *
 * --baseline-cli: another build of natmesh, started in turn with this one (same gateway), reported beside it
 * with the ratio this build / baseline.
 *
 * Last line of stdout: {"bench":"footprint","natmesh":{"startToReservationMs","idleRssMiB"},"hyperswarm":
 * {"startToAnnouncedMs","idleRssMiB"},"startVsHyperswarm","rssVsHyperswarm","goals":{…}}.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { createInterface } from 'node:readline'
import { parseArgs } from 'node:util'
import createTestnet from 'hyperdht/testnet.js'
import { loadOrCreateIdentity } from '../dist/core/identity.js'
import { positiveInteger } from './lib/args.ts'
import { GatewayProcess } from './lib/gateway-process.ts'
import { median } from './lib/transfer.ts'

const { values: args } = parseArgs({
  options: {
    starts: { type: 'string', default: '10' },
    'idle-s': { type: 'string', default: '10' },
    /** another build's dist/cli/index.js, started in turn with this one: before/after in the same run */
    'baseline-cli': { type: 'string' }
  }
})
const starts = positiveInteger(args, 'starts')
const idleMs = positiveInteger(args, 'idle-s') * 1000
const EVENT_TIMEOUT_MS = 30_000
const CLI = new URL('../dist/cli/index.js', import.meta.url).pathname
const HYPERSWARM = new URL('./lib/hyperswarm-announce.ts', import.meta.url).pathname

interface Sample { startMs: number, rssMiB: number }

async function rssMiB (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1])
  return kib / 1024
}

/**
 * Spawns argv, times spawn → the first stdout JSON line whose event is `event` (told to `onStart`), idles, reads
 * RSS, stops it.
 */
async function sample (argv: string[], event: string, onStart: (ms: number) => void): Promise<Sample> {
  const start = performance.now()
  const child: ChildProcess = spawn(process.execPath, argv, { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-2000) })
  const exited = new Promise<void>(resolve => child.once('exit', () => { resolve() }))
  try {
    const startMs = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`no "${event}" event within ${EVENT_TIMEOUT_MS} ms; stderr: ${stderr}`)) }, EVENT_TIMEOUT_MS)
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let parsed: { event?: string } | undefined
        try { parsed = JSON.parse(line) as { event?: string } } catch { return }
        if (parsed?.event === event) { clearTimeout(timer); resolve(performance.now() - start) }
      })
      void exited.then(() => { clearTimeout(timer); reject(new Error(`exited before "${event}" (code ${child.exitCode}); stderr: ${stderr}`)) })
    })
    onStart(startMs)
    await new Promise(resolve => setTimeout(resolve, idleMs))
    return { startMs, rssMiB: await rssMiB(child.pid!) }
  } finally {
    if (child.exitCode == null && child.signalCode == null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 10_000)
      await exited
      clearTimeout(timer)
    }
  }
}

const round = (x: number, digits: number): number => Number(x.toFixed(digits))

async function main (): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'natmesh-footprint-bench-'))
  const gateway = new GatewayProcess(dir, [])
  const testnet = await createTestnet(3, { host: '127.0.0.1' })
  try {
    const gateways = (await gateway.addrs).filter(ma => ma.includes('/udx'))
    const natmesh: Sample[] = []
    const hyperswarm: Sample[] = []
    const baseline: Sample[] = []
    const baselineCli = args['baseline-cli']
    // the two take turns, so load on this shared machine falls on both alike
    const pending: Array<Promise<void>> = []
    for (let i = 1; i <= starts; i++) {
      const identityFile = join(dir, `peer-${i}.key`)
      await loadOrCreateIdentity(identityFile)
      const peerArgs = ['peer', '--json', '--log-level', 'silent', ...gateways.flatMap(g => ['--gateway', g]), '--host', '127.0.0.1', '--allow-private-addresses',
        '--identity-file', identityFile, '--no-control-socket', '--stun-ports', ...gateway.stunPorts.slice(0, 2).map(String)]
      // each start is timed alone; the idle seconds of earlier ones overlap it
      const startThis = async (): Promise<number> => startTimed([CLI, ...peerArgs], 'reservation', natmesh, pending)
      let n: number
      let b: number | undefined
      if (baselineCli == null) {
        n = await startThis()
      } else {
        const baselineKey = join(dir, `baseline-${i}.key`)
        await loadOrCreateIdentity(baselineKey)
        const startBaseline = async (): Promise<number> => startTimed([baselineCli, ...peerArgs.map(a => a === identityFile ? baselineKey : a)], 'reservation', baseline, pending)
        // alternate which goes first, so neither always starts beside the other's fresh idle process
        if (i % 2 === 1) { n = await startThis(); b = await startBaseline() } else { b = await startBaseline(); n = await startThis() }
      }
      const h = await startTimed([HYPERSWARM, JSON.stringify(testnet.bootstrap)], 'announced', hyperswarm, pending)
      console.log(`  start ${String(i).padStart(2)}: natmesh spawn -> reservation ${n.toFixed(0)} ms, hyperswarm spawn -> announced ${h.toFixed(0)} ms${b != null ? `, baseline natmesh ${b.toFixed(0)} ms` : ''}`)
    }
    await Promise.all(pending)
    const med = (samples: Sample[], f: (s: Sample) => number): number => median(samples.map(f))
    const natStart = med(natmesh, s => s.startMs)
    const natRss = med(natmesh, s => s.rssMiB)
    const hsStart = med(hyperswarm, s => s.startMs)
    const hsRss = med(hyperswarm, s => s.rssMiB)
    console.log('')
    console.log(`footprint, median of ${starts} starts, RSS ${idleMs / 1000} s after the event`)
    console.log(`  natmesh peer   spawn -> reservation ${natStart.toFixed(0)} ms, idle RSS ${natRss.toFixed(1)} MiB`)
    console.log(`  hyperswarm     spawn -> announced   ${hsStart.toFixed(0)} ms, idle RSS ${hsRss.toFixed(1)} MiB`)
    const base = baseline.length === 0 ? null : { startToReservationMs: round(med(baseline, s => s.startMs), 0), idleRssMiB: round(med(baseline, s => s.rssMiB), 1) }
    if (base != null) console.log(`  baseline peer  spawn -> reservation ${base.startToReservationMs} ms, idle RSS ${base.idleRssMiB} MiB (${baselineCli})`)
    return {
      bench: 'footprint',
      starts,
      idleS: idleMs / 1000,
      natmesh: { startToReservationMs: round(natStart, 0), idleRssMiB: round(natRss, 1) },
      hyperswarm: { startToAnnouncedMs: round(hsStart, 0), idleRssMiB: round(hsRss, 1) },
      startVsHyperswarm: round(natStart / hsStart, 2),
      rssVsHyperswarm: round(natRss / hsRss, 2),
      ...(base != null ? { baseline: base, startVsBaseline: round(natStart / base.startToReservationMs, 2), rssVsBaseline: round(natRss / base.idleRssMiB, 2) } : {}),
      goals: { startToReservationAtMost200Ms: natStart <= 200, idleRssAtMost80MiB: natRss <= 80 }
    }
  } finally {
    await testnet.destroy().catch((err: unknown) => { console.error('stopping the testnet failed:', err) })
    await gateway.stop().catch((err: unknown) => { console.error('stopping the gateway failed:', err) })
    await rm(dir, { recursive: true, force: true })
  }
}

/** Starts one sample; resolves with its start time once the event came, leaves its idle wait in `pending`. */
async function startTimed (argv: string[], event: string, into: Sample[], pending: Array<Promise<void>>): Promise<number> {
  let reportStart!: (ms: number) => void
  let failStart!: (err: unknown) => void
  const started = new Promise<number>((resolve, reject) => { reportStart = resolve; failStart = reject })
  const run = sample(argv, event, reportStart).then((s) => { into.push(s) }, (err: unknown) => { failStart(err); throw err })
  run.catch(() => {})
  pending.push(run)
  return started
}

try {
  console.log(JSON.stringify(await main()))
} catch (err) {
  console.error('footprint bench failed -', err)
  console.log(JSON.stringify({ bench: 'footprint', error: String(err) }))
  process.exitCode = 1
}
