/**
 * What relaying costs a gateway: relayed MB/s and gateway CPU ms per relayed MiB for 1, 4, 16 and 64 concurrent
 * transfers, and the gateway's memory after relaying a large total (forced GC), with a direct-path anchor.
 *
 *   gateway   a process of its own (bench/lib/relay-gateway-process.ts), so its CPU time and memory are its own
 *   peers     A (sender) and B (receiver) in this process; the hole punch gives them a direct connection too
 *
 * Each level runs `concurrency` transfers at once, each on a fresh stream, spread over up to --circuits relayed
 * connections (each its own circuit: a hop and a stop stream at the gateway); a transfer is checked end to end
 * (sha256). The level's bytes are split evenly among its transfers. Then the same is done once over the direct
 * connection (the anchor). Finally --soak-mib are relayed (16 transfers at a time) and the gateway's RSS and
 * ArrayBuffers are read after a forced GC, circuits still open, and compared with the same reading before any
 * relaying.
 *
 * Imports the compiled project from dist/: run `tsc -p tsconfig.json` first.
 *
 *   node bench/relay.ts [--level-mib 256] [--soak-mib 4096] [--circuits 1] [--levels 1,4,16,64] [--quick]
 *
 * --quick: --level-mib 64 --soak-mib 512. Last line of stdout: {"bench":"relay", "levels":[{"concurrency",
 * "relayedMBps","gatewayCpuMsPerMiB","relayedMiBPerCpuS","gatewayCores"}], "directMBps", "relayedVsDirect" (at
 * concurrency 1), "soakMiB", "rssGrowthMiB", "arrayBuffersGrowthMiB", ...}. MB = 10^6 bytes, MiB = 2^20.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
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
import { positiveInteger } from './lib/args.ts'
import { handleThroughput, makePayload, median, sendPayload } from './lib/transfer.ts'

const { values: args } = parseArgs({
  options: {
    'level-mib': { type: 'string', default: '256' },
    'soak-mib': { type: 'string', default: '4096' },
    circuits: { type: 'string', default: '1' },
    levels: { type: 'string', default: '1,4,16,64' },
    'chunk-kib': { type: 'string', default: '64' },
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
const levels = args.levels.split(',').map(Number)
if (levels.some(n => !Number.isInteger(n) || n <= 0)) {
  console.error(`--levels must be positive integers, got ${args.levels}`)
  process.exit(2)
}
const SOAK_CONCURRENCY = 16
const TRANSFER_TIMEOUT_MS = 300_000
const MiB = 2 ** 20

interface LevelResult {
  concurrency: number
  relayedMBps: number
  gatewayCpuMsPerMiB: number
  relayedMiBPerCpuS: number
  /** gateway CPU time / wall time: 1 = one core busy */
  gatewayCores: number
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

async function main (): Promise<Record<string, unknown>> {
  const dir = await mkdtemp(join(tmpdir(), 'natmesh-relay-bench-'))
  const stops: Array<() => Promise<void>> = [async () => { await rm(dir, { recursive: true, force: true }) }]
  try {
    const ids = await Promise.all(['peer-a', 'peer-b'].map(async name => loadOrCreateIdentity(join(dir, `${name}.key`))))
    // both peers allowlisted: their circuits carry no data or duration limit
    const execArgv = ['--expose-gc', ...(process.env.RELAY_BENCH_GATEWAY_PROF != null ? ['--cpu-prof', `--cpu-prof-dir=${process.env.RELAY_BENCH_GATEWAY_PROF}`] : [])]
    const gateway = new GatewayProcess(dir, ids.map(id => id.peerId.toString()), execArgv)
    stops.unshift(async () => { await gateway.stop() })
    const udxAddrs = (await gateway.addrs).filter(ma => ma.includes('/udx'))
    const a = await startPeer(dir, 'peer-a', udxAddrs)
    stops.unshift(async () => { await a.stop() })
    const b = await startPeer(dir, 'peer-b', udxAddrs)
    stops.unshift(async () => { await b.stop() })
    await handleThroughput(b.node, Math.max(...levels, SOAK_CONCURRENCY))

    const circuits: Connection[] = [await a.connect(b.peerId.toString())]
    const direct = await a.waitForDirect(b.peerId, 15_000)
    if (direct == null) throw new Error('no direct connection within 15 s (hole punch failed?)')
    const circuitsFor = async (n: number): Promise<Connection[]> => {
      while (circuits.length < Math.min(n, maxCircuits)) circuits.push(await a.connect(b.peerId.toString(), AbortSignal.timeout(15_000), { force: true }))
      return circuits.slice(0, Math.min(n, maxCircuits))
    }
    await transfers(await circuitsFor(Math.max(...levels)), Math.min(Math.max(...levels), maxCircuits), 4 * MiB)
    const baseline = await gateway.stats('gc')
    console.log(`gateway before relaying (after GC): RSS ${(baseline.rss / MiB).toFixed(1)} MiB, ArrayBuffers ${(baseline.arrayBuffers / MiB).toFixed(1)} MiB`)

    const results: LevelResult[] = []
    for (const concurrency of levels) {
      const connections = await circuitsFor(concurrency)
      const before = await gateway.stats()
      const ms = await transfers(connections, concurrency, levelBytes)
      const after = await gateway.stats()
      const cpuMs = after.cpuMs - before.cpuMs
      const result: LevelResult = {
        concurrency,
        relayedMBps: round(levelBytes / 1e6 / (ms / 1000), 2),
        gatewayCpuMsPerMiB: round(cpuMs / (levelBytes / MiB), 2),
        relayedMiBPerCpuS: round((levelBytes / MiB) / (cpuMs / 1000), 1),
        gatewayCores: round(cpuMs / ms, 2)
      }
      results.push(result)
      console.log(`relayed x${String(concurrency).padStart(2)} over ${connections.length} circuit(s): ${result.relayedMBps} MB/s, gateway ${result.gatewayCpuMsPerMiB} CPU ms/MiB (${result.relayedMiBPerCpuS} MiB per CPU s, ${result.gatewayCores} cores)`)
    }

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
    return {
      bench: 'relay',
      levelMiB: levelBytes / MiB,
      circuits: Math.min(maxCircuits, Math.max(...levels)),
      levels: results,
      medianGatewayCpuMsPerMiB: round(median(results.map(r => r.gatewayCpuMsPerMiB)), 2),
      medianRelayedMiBPerCpuS: round(median(results.map(r => r.relayedMiBPerCpuS)), 1),
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
