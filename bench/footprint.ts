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
 * Both run with bench/lib/startup-marks.ts preloaded (`node --import`), which reports the CLI's start-up marks
 * and, once idle, where the memory goes. natmesh's start splits into phases: node (Node up), loadCli (the CLI's
 * own modules), configure (config and identity), loadPeer (the peer's modules: libp2p and the protocols), create
 * (createPeer), start (peer.start()), reserve (start returned -> the reservation event); the RSS into the V8
 * heap (of it code), and outside it.
 *
 * Imports the compiled project from dist/: run `tsc -p tsconfig.json` first (`npm run bench:footprint` does).
 *
 *   node bench/footprint.ts [--starts 10] [--idle-s 10] [--baseline-cli OTHER/dist/cli/index.js] [--peer-node-arg FLAG]...
 *
 * --baseline-cli: another build of natmesh, started in turn with this one (same gateway), reported beside it
 * with the ratio this build / baseline. --peer-node-arg: a Node/V8 flag for this build's peer processes (not the
 * baseline's, so --baseline-cli with a copy of this build measures the flag), e.g. --max-semi-space-size=2.
 *
 * Last line of stdout: {"bench":"footprint","natmesh":{"startToReservationMs","idleRssMiB","phasesMs":{…},
 * "memoryMiB":{…}},"hyperswarm":{"startToAnnouncedMs","idleRssMiB","nodeReadyMs","memoryMiB"},"startVsHyperswarm",
 * "rssVsHyperswarm","goals":{…}}.
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
import { STARTUP_MARKS } from '../dist/cli/peer-command.js'
import { loadOrCreateIdentity } from '../dist/core/identity.js'
import { positiveInteger } from './lib/args.ts'
import { GatewayProcess } from './lib/gateway-process.ts'
import { median } from './lib/transfer.ts'

const { values: args } = parseArgs({
  options: {
    starts: { type: 'string', default: '10' },
    'idle-s': { type: 'string', default: '10' },
    /** another build's dist/cli/index.js, started in turn with this one: before/after in the same run */
    'baseline-cli': { type: 'string' },
    /** Node/V8 flags for this build's peer processes */
    'peer-node-arg': { type: 'string', multiple: true, default: [] }
  }
})
const starts = positiveInteger(args, 'starts')
const idleMs = positiveInteger(args, 'idle-s') * 1000
const EVENT_TIMEOUT_MS = 30_000
const CLI = new URL('../dist/cli/index.js', import.meta.url).pathname
const HYPERSWARM = new URL('./lib/hyperswarm-announce.ts', import.meta.url).pathname
const MARKS_PRELOAD = new URL('./lib/startup-marks.ts', import.meta.url).pathname
const MEMORY_REPORT_TIMEOUT_MS = 5000

type Memory = Record<'rss' | 'heapTotal' | 'heapUsed' | 'code' | 'external' | 'nonHeap', number>
interface Sample {
  startMs: number
  rssMiB: number
  /** performance marks (bench/lib/startup-marks.ts), ms since the process started */
  marks: Record<string, number>
  memory?: Memory
}

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
  const child: ChildProcess = spawn(process.execPath, ['--import', MARKS_PRELOAD, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr!.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-2000) })
  const exited = new Promise<void>(resolve => child.once('exit', () => { resolve() }))
  const marks: Record<string, number> = {}
  let onMemory: ((memory: Memory) => void) | undefined
  const lines = createInterface({ input: child.stdout! })
  try {
    const startMs = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => { reject(new Error(`no "${event}" event within ${EVENT_TIMEOUT_MS} ms; stderr: ${stderr}`)) }, EVENT_TIMEOUT_MS)
      lines.on('line', (line) => {
        let parsed: { event?: string, startupMark?: string, ms?: number, memory?: Memory } | undefined
        try { parsed = JSON.parse(line) as typeof parsed } catch { return }
        if (parsed?.startupMark != null && parsed.ms != null) marks[parsed.startupMark] ??= parsed.ms
        if (parsed?.memory != null) onMemory?.(parsed.memory)
        if (parsed?.event === event) { clearTimeout(timer); resolve(performance.now() - start) }
      })
      void exited.then(() => { clearTimeout(timer); reject(new Error(`exited before "${event}" (code ${child.exitCode}); stderr: ${stderr}`)) })
    })
    onStart(startMs)
    await new Promise(resolve => setTimeout(resolve, idleMs))
    const rss = await rssMiB(child.pid!)
    const memory = await new Promise<Memory | undefined>((resolve) => {
      const timer = setTimeout(() => { resolve(undefined) }, MEMORY_REPORT_TIMEOUT_MS)
      onMemory = (m) => { clearTimeout(timer); resolve(m) }
      child.kill('SIGUSR2')
    })
    return { startMs, rssMiB: rss, marks, memory }
  } finally {
    if (child.exitCode == null && child.signalCode == null) {
      child.kill('SIGTERM')
      const timer = setTimeout(() => { child.kill('SIGKILL') }, 10_000)
      await exited
      clearTimeout(timer)
    }
  }
}

/** natmesh's start-up phases (see the top of this file), each sample's from its marks, then the median of each */
function phases (samples: Sample[]): Record<string, number> {
  // each phase ends at its mark and starts at the one before (node: at the process start)
  const ends: Array<[string, string]> = [['node', 'node:ready'], ['loadCli', STARTUP_MARKS.loaded], ['configure', STARTUP_MARKS.configured],
    ['loadPeer', STARTUP_MARKS.peerLoaded], ['create', STARTUP_MARKS.created], ['start', STARTUP_MARKS.started]]
  const out: Record<string, number> = {}
  ends.forEach(([name, mark], i) => {
    const previous = i === 0 ? undefined : ends[i - 1]?.[1]
    const values = samples.map(s => (s.marks[mark] ?? NaN) - (previous == null ? 0 : s.marks[previous] ?? NaN)).filter(Number.isFinite)
    if (values.length > 0) out[name] = round(median(values), 0)
  })
  const reserve = samples.map(s => s.startMs - (s.marks[STARTUP_MARKS.started] ?? NaN)).filter(Number.isFinite)
  if (reserve.length > 0) out.reserve = round(median(reserve), 0)
  return out
}

/** each memory figure's median over the samples that reported one */
function memory (samples: Sample[]): Partial<Memory> {
  const reported = samples.flatMap(s => s.memory != null ? [s.memory] : [])
  const first = reported[0]
  if (first == null) return {}
  const keys = Object.keys(first) as Array<keyof Memory>
  return Object.fromEntries(keys.map(k => [k, round(median(reported.map(m => m[k])), 1)]))
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
      const nodeArgs = args['peer-node-arg']
      const startThis = async (): Promise<number> => startTimed([...nodeArgs, CLI, ...peerArgs], 'reservation', natmesh, pending)
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
    const natPhases = phases(natmesh)
    const natMemory = memory(natmesh)
    const hsMemory = memory(hyperswarm)
    const hsNodeReady = round(median(hyperswarm.map(s => s.marks['node:ready'] ?? NaN).filter(Number.isFinite)), 0)
    console.log(`  natmesh peer   spawn -> reservation ${natStart.toFixed(0)} ms, idle RSS ${natRss.toFixed(1)} MiB`)
    console.log(`                 phases (ms): ${Object.entries(natPhases).map(([k, v]) => `${k} ${v}`).join(', ')}`)
    console.log(`                 memory (MiB): ${Object.entries(natMemory).map(([k, v]) => `${k} ${v}`).join(', ')}`)
    console.log(`  hyperswarm     spawn -> announced   ${hsStart.toFixed(0)} ms, idle RSS ${hsRss.toFixed(1)} MiB, node ready at ${hsNodeReady} ms`)
    console.log(`                 memory (MiB): ${Object.entries(hsMemory).map(([k, v]) => `${k} ${v}`).join(', ')}`)
    const base = baseline.length === 0 ? null : { startToReservationMs: round(med(baseline, s => s.startMs), 0), idleRssMiB: round(med(baseline, s => s.rssMiB), 1), phasesMs: phases(baseline), memoryMiB: memory(baseline) }
    if (base != null) console.log(`  baseline peer  spawn -> reservation ${base.startToReservationMs} ms, idle RSS ${base.idleRssMiB} MiB (${baselineCli})`)
    return {
      bench: 'footprint',
      starts,
      idleS: idleMs / 1000,
      peerNodeArgs: args['peer-node-arg'],
      natmesh: { startToReservationMs: round(natStart, 0), idleRssMiB: round(natRss, 1), phasesMs: natPhases, memoryMiB: natMemory },
      hyperswarm: { startToAnnouncedMs: round(hsStart, 0), idleRssMiB: round(hsRss, 1), nodeReadyMs: hsNodeReady, memoryMiB: hsMemory },
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
