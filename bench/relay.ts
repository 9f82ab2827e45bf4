/**
 * What relaying costs a gateway: relayed MB/s and gateway CPU ms per relayed MiB for 1, 4, 16 and 64 concurrent
 * transfers, where that CPU goes (per thread) and how busy each core of the machine was, and the gateway's memory
 * after relaying a large total (forced GC), with a direct-path anchor.
 *
 *   gateway   a process of its own (bench/lib/relay-gateway-process.ts), so its CPU time and memory are its own
 *   peers     A (sender) and B (receiver) in this process; the hole punch gives them a direct connection too
 *
 * The levels run twice, on two gateways one after the other: first with `--relay-workers 0` (forwarded circuits
 * joined on the main event loop: the anchor), then with --relay-workers (default: the gateway's default for this
 * machine, at least 1). Each level runs `concurrency` transfers at once, each on a fresh stream, spread over up to
 * --circuits relayed connections (each its own circuit); a transfer is checked end to end (sha256). The level's
 * bytes are split evenly among its transfers. Per level: the gateway's CPU per thread (/proc/self/task: the main
 * thread, then the others busiest first; with workers the busiest others are the relay workers, the rest V8's and
 * libuv's helpers) and each machine core's busy share (/proc/stat; the peers, both ends of every transfer, run on
 * the same cores). Then the same transfer is done once over the direct connection (the anchor). Finally --soak-mib
 * are relayed through the workers gateway (16 transfers at a time) and its RSS and ArrayBuffers are read after a
 * forced GC, circuits still open, and compared with the same reading before any relaying.
 *
 * Imports the compiled project from dist/: run `tsc -p tsconfig.json` first.
 *
 *   node bench/relay.ts [--level-mib 256] [--soak-mib 4096] [--circuits 1] [--levels 1,4,16,64] [--relay-workers N] [--quick]
 *
 * --quick: --level-mib 64 --soak-mib 512. Last line of stdout: {"bench":"relay", "relayWorkers", "levels" (with
 * workers) and "inLoopLevels": [{"concurrency", "relayedMBps", "gatewayCpuMsPerMiB", "relayedMiBPerCpuS",
 * "gatewayCores", "mainThreadCores", "otherThreadCores" (busiest first), "machineCoreBusy"}],
 * "medianRelayedMiBPerCpuS", "inLoopMedianRelayedMiBPerCpuS", "workersVsInLoopMiBPerCpuS",
 * "medianMainThreadCores", "inLoopMedianMainThreadCores", "directMBps", "relayedVsDirect" (at concurrency 1),
 * "soakMiB", "rssGrowthMiB", "arrayBuffersGrowthMiB", ...}. MB = 10^6 bytes, MiB = 2^20.
 */
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { parseArgs } from 'node:util'
import type { Connection } from '@libp2p/interface'
import { loadPeerConfig } from '../dist/config/index.js'
import { loadOrCreateIdentity } from '../dist/core/identity.js'
import { createPeer } from '../dist/peer/peer.js'
import type { NatmeshPeer } from '../dist/peer/peer.js'
import { waitFor } from '../test/helpers/wait-for.ts'
import { GatewayProcess } from './lib/gateway-process.ts'
import type { GatewayStats } from './lib/relay-gateway-process.ts'
import { positiveInteger } from './lib/args.ts'
import { handleThroughput, makePayload, median, sendPayload } from './lib/transfer.ts'

const { values: args } = parseArgs({
  options: {
    'level-mib': { type: 'string', default: '256' },
    'soak-mib': { type: 'string', default: '4096' },
    circuits: { type: 'string', default: '1' },
    levels: { type: 'string', default: '1,4,16,64' },
    'chunk-kib': { type: 'string', default: '64' },
    // the gateway's own default (one per core but one, at most 4), and at least one, so there is something to compare
    'relay-workers': { type: 'string', default: String(Math.max(1, Math.min(availableParallelism() - 1, 4))) },
    quick: { type: 'boolean', default: false }
  }
})
if (args.quick) {
  args['level-mib'] = '64'
  args['soak-mib'] = '512'
}
const levelBytes = positiveInteger(args, 'level-mib') * 2 ** 20
const soakBytes = positiveInteger(args, 'soak-mib') * 2 ** 20
const maxCircuits = positiveInteger(args, 'circuits')
const chunkBytes = positiveInteger(args, 'chunk-kib') * 1024
const relayWorkers = positiveInteger(args, 'relay-workers')
const levels = args.levels.split(',').map(Number)
if (levels.some(n => !Number.isInteger(n) || n <= 0)) {
  console.error(`--levels must be positive integers, got ${args.levels}`)
  process.exit(2)
}
const SOAK_CONCURRENCY = 16
const CIRCUIT_PACE_MS = 250
const TRANSFER_TIMEOUT_MS = 300_000
const MiB = 2 ** 20

interface LevelResult {
  concurrency: number
  relayedMBps: number
  gatewayCpuMsPerMiB: number
  relayedMiBPerCpuS: number
  /** gateway CPU time / wall time: 1 = one core busy */
  gatewayCores: number
  /** the gateway's main thread (event loop) CPU time / wall time */
  mainThreadCores: number
  /** the gateway's other threads, busiest first, those above 0.01 cores */
  otherThreadCores: number[]
  /** each machine core's busy share over the level (gateway and both peers together) */
  machineCoreBusy: number[]
}

/** per-core [busy, total] jiffies from /proc/stat */
function coreTimes (): Array<[number, number]> {
  return readFileSync('/proc/stat', 'utf8').split('\n').filter(line => /^cpu\d+ /.test(line)).map(line => {
    const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map(Number) as number[]
    const busy = user! + nice! + system! + irq! + softirq! + steal!
    return [busy, busy + idle! + iowait!]
  })
}

/** each thread's CPU ms between two readings, the main thread first, then the others busiest first */
function threadDeltas (before: GatewayStats, after: GatewayStats): { main: number, others: number[] } {
  const was = new Map(before.threads.map(t => [t.tid, t.cpuMs]))
  const deltas = after.threads.map(t => ({ tid: t.tid, ms: t.cpuMs - (was.get(t.tid) ?? 0) }))
  return {
    main: deltas.find(t => t.tid === after.mainTid)?.ms ?? 0,
    others: deltas.filter(t => t.tid !== after.mainTid).map(t => t.ms).sort((a, b) => b - a)
  }
}

async function startPeer (dir: string, name: string, gatewayAddrs: string[]): Promise<NatmeshPeer> {
  const config = await loadPeerConfig({
    env: {},
    flags: { gateways: gatewayAddrs, host: '127.0.0.1', allowPrivateAddresses: true, natDetection: false, identityFile: join(dir, `${name}.key`), logLevel: 'silent' }
  })
  const identity = await loadOrCreateIdentity(config.identityFile)
  const peer = await createPeer(config, { privateKey: identity.privateKey })
  await peer.start()
  await waitFor(() => peer.relayAddresses().length > 0, 10_000, `${name} to hold a reservation on the gateway`)
  return peer
}

/** `count` transfers of `total / count` bytes at once, round robin over `connections`; wall time in ms */
async function transfers (connections: Connection[], count: number, total: number): Promise<number> {
  const payload = makePayload(Math.ceil(total / count))
  const start = performance.now()
  await Promise.all(Array.from({ length: count }, async (_v, i) => {
    await sendPayload(connections[i % connections.length]!, payload, { chunkBytes, timeoutMs: TRANSFER_TIMEOUT_MS, label: `transfer ${i + 1} of ${count}` })
  }))
  return performance.now() - start
}

const round = (x: number, digits: number): number => Number(x.toFixed(digits))

/** Starts a gateway (relayWorkers threads), peers A and B reserving on it, and their first circuit and direct path. */
async function setUp (dir: string, workers: number, stops: Array<() => Promise<void>>): Promise<{ gateway: GatewayProcess, circuitsFor: (n: number) => Promise<Connection[]>, direct: Connection, circuits: Connection[] }> {
  const ids = await Promise.all(['peer-a', 'peer-b'].map(async name => loadOrCreateIdentity(join(dir, `${name}.key`))))
  // both peers allowlisted: their circuits carry no data or duration limit
  const execArgv = ['--expose-gc', ...(process.env.RELAY_BENCH_GATEWAY_PROF != null ? ['--cpu-prof', `--cpu-prof-dir=${process.env.RELAY_BENCH_GATEWAY_PROF}`] : [])]
  const gateway = new GatewayProcess(dir, ids.map(id => id.peerId.toString()), execArgv, { relayWorkers: workers })
  stops.unshift(async () => { await gateway.stop() })
  const udxAddrs = (await gateway.addrs).filter(ma => ma.includes('/udx'))
  const a = await startPeer(dir, 'peer-a', udxAddrs)
  stops.unshift(async () => { await a.stop() })
  const b = await startPeer(dir, 'peer-b', udxAddrs)
  stops.unshift(async () => { await b.stop() })
  await handleThroughput(b.node, Math.max(...levels, SOAK_CONCURRENCY))
  const circuits: Connection[] = [await a.connect(b.peerId.toString())]
  const circuitsFor = async (n: number): Promise<Connection[]> => {
    while (circuits.length < Math.min(n, maxCircuits)) {
      // B's libp2p refuses a sixth inbound connection within a second from one IP (inboundConnectionThreshold 5),
      // and every circuit through the gateway comes from the gateway's IP (on main too)
      await new Promise(resolve => setTimeout(resolve, CIRCUIT_PACE_MS))
      circuits.push(await a.connect(b.peerId.toString(), AbortSignal.timeout(15_000), { force: true }))
    }
    return circuits.slice(0, Math.min(n, maxCircuits))
  }
  // every circuit before the direct path: the first forced relayed dial after a hole punch fails at once (it
  // joins a dial the punch aborted, in libp2p's dial queue; on main too)
  await circuitsFor(Math.max(...levels, SOAK_CONCURRENCY))
  console.log(`gateway with ${workers} relay worker(s): ${circuits.length} circuit(s) open`)
  const direct = await a.waitForDirect(b.peerId, 15_000)
  if (direct == null) throw new Error('no direct connection within 15 s (hole punch failed?)')
  // warm-up: every circuit open and carrying before anything is measured
  await transfers(await circuitsFor(Math.max(...levels)), Math.min(Math.max(...levels), maxCircuits), 4 * MiB)
  return { gateway, circuitsFor, direct, circuits }
}

async function runLevels (label: string, gateway: GatewayProcess, circuitsFor: (n: number) => Promise<Connection[]>): Promise<LevelResult[]> {
  const results: LevelResult[] = []
  for (const concurrency of levels) {
    const connections = await circuitsFor(concurrency)
    const before = await gateway.stats()
    const coresBefore = coreTimes()
    const ms = await transfers(connections, concurrency, levelBytes)
    const coresAfter = coreTimes()
    const after = await gateway.stats()
    const cpuMs = after.cpuMs - before.cpuMs
    const threads = threadDeltas(before, after)
    const result: LevelResult = {
      concurrency,
      relayedMBps: round(levelBytes / 1e6 / (ms / 1000), 2),
      gatewayCpuMsPerMiB: round(cpuMs / (levelBytes / MiB), 2),
      relayedMiBPerCpuS: round((levelBytes / MiB) / (cpuMs / 1000), 1),
      gatewayCores: round(cpuMs / ms, 2),
      mainThreadCores: round(threads.main / ms, 2),
      otherThreadCores: threads.others.map(t => round(t / ms, 2)).filter(c => c >= 0.01),
      machineCoreBusy: coresAfter.map(([busy, total], i) => round((busy - coresBefore[i]![0]) / Math.max(1, total - coresBefore[i]![1]), 2))
    }
    results.push(result)
    console.log(`${label} x${String(concurrency).padStart(2)} over ${connections.length} circuit(s): ${result.relayedMBps} MB/s, gateway ${result.gatewayCpuMsPerMiB} CPU ms/MiB (${result.relayedMiBPerCpuS} MiB per CPU s, ${result.gatewayCores} cores: main thread ${result.mainThreadCores}, others ${result.otherThreadCores.join('/') || '-'}); machine cores busy ${result.machineCoreBusy.join('/')}`)
  }
  return results
}

async function main (): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'natmesh-relay-bench-'))
  const stops: Array<() => Promise<void>> = [async () => { await rm(dir, { recursive: true, force: true }) }]
  try {
    // the anchor: the same gateway forwarding on its main loop alone
    const inLoopStops: Array<() => Promise<void>> = []
    let inLoopResults: LevelResult[]
    try {
      const inLoop = await setUp(dir, 0, inLoopStops)
      inLoopResults = await runLevels('in-loop', inLoop.gateway, inLoop.circuitsFor)
    } finally {
      for (const stop of inLoopStops) await stop().catch((err: unknown) => { console.error('stopping failed:', err) })
    }

    const { gateway, circuitsFor, direct, circuits } = await setUp(dir, relayWorkers, stops)
    const baseline = await gateway.stats('gc')
    console.log(`gateway before relaying (after GC): RSS ${(baseline.rss / MiB).toFixed(1)} MiB, ArrayBuffers ${(baseline.arrayBuffers / MiB).toFixed(1)} MiB`)
    const results = await runLevels(`${relayWorkers} worker(s)`, gateway, circuitsFor)

    const directMs = await transfers([direct], 1, levelBytes)
    const directMBps = round(levelBytes / 1e6 / (directMs / 1000), 2)
    console.log(`direct x 1: ${directMBps} MB/s`)

    let soaked = 0
    const soakStart = performance.now()
    const soakConnections = await circuitsFor(SOAK_CONCURRENCY)
    let soakError: string | null = null
    try {
      while (soaked < soakBytes) {
        const step = Math.min(256 * MiB, soakBytes - soaked)
        await transfers(soakConnections, SOAK_CONCURRENCY, step)
        soaked += step
      }
    } catch (err) {
      // what the gateway holds after the cut is still worth reading
      soakError = String((err as Error).message ?? err)
      console.log(`soak stopped after ${soaked / MiB} MiB: ${soakError}`)
    }
    const soakMs = performance.now() - soakStart
    const afterSoak = await gateway.stats('gc')
    console.log(`relayed ${soaked / MiB} MiB in ${(soakMs / 1000).toFixed(1)} s; gateway after GC, ${circuits.length} circuits open: RSS ${(afterSoak.rss / MiB).toFixed(1)} MiB, ArrayBuffers ${(afterSoak.arrayBuffers / MiB).toFixed(1)} MiB`)

    const one = results.find(r => r.concurrency === 1)
    const medianOf = (rs: LevelResult[], key: 'relayedMiBPerCpuS' | 'gatewayCpuMsPerMiB' | 'mainThreadCores'): number => median(rs.map(r => r[key]))
    return {
      bench: 'relay',
      levelMiB: levelBytes / MiB,
      circuits: Math.min(maxCircuits, Math.max(...levels)),
      relayWorkers,
      levels: results,
      inLoopLevels: inLoopResults,
      medianGatewayCpuMsPerMiB: round(medianOf(results, 'gatewayCpuMsPerMiB'), 2),
      medianRelayedMiBPerCpuS: round(medianOf(results, 'relayedMiBPerCpuS'), 1),
      inLoopMedianRelayedMiBPerCpuS: round(medianOf(inLoopResults, 'relayedMiBPerCpuS'), 1),
      workersVsInLoopMiBPerCpuS: round(medianOf(results, 'relayedMiBPerCpuS') / medianOf(inLoopResults, 'relayedMiBPerCpuS'), 2),
      medianMainThreadCores: round(medianOf(results, 'mainThreadCores'), 2),
      inLoopMedianMainThreadCores: round(medianOf(inLoopResults, 'mainThreadCores'), 2),
      directMBps,
      relayedVsDirect: one == null ? null : round(one.relayedMBps / directMBps, 3),
      soakMiB: soaked / MiB,
      soakError,
      rssBeforeMiB: round(baseline.rss / MiB, 1),
      rssAfterMiB: round(afterSoak.rss / MiB, 1),
      rssGrowthMiB: round((afterSoak.rss - baseline.rss) / MiB, 1),
      arrayBuffersGrowthMiB: round((afterSoak.arrayBuffers - baseline.arrayBuffers) / MiB, 1),
      relayBufferedPeakPerCircuitMiB: afterSoak.relayBufferedPeakPerCircuit == null ? null : round(afterSoak.relayBufferedPeakPerCircuit / MiB, 2)
    }
  } finally {
    for (const stop of stops) await stop().catch((err: unknown) => { console.error('stopping failed:', err) })
  }
}

try {
  console.log(JSON.stringify(await main()))
} catch (err) {
  console.error('relay bench failed -', err)
  console.log(JSON.stringify({ bench: 'relay', error: String(err) }))
  process.exitCode = 1
}
