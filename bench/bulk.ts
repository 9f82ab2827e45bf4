/**
 * One-way bulk throughput and CPU cost per MiB, natmesh against the stacks users compare it with, every end in a
 * process of its own (bench/lib/bulk-child.ts) on 127.0.0.1:
 *
 *   direct      natmesh peer A → peer B over the hole-punched UDP overlay: udx + noise + yamux
 *   session     a natmesh session on that direct connection
 *   relayed     A → gateway (its own process) → B: circuit relay v2, both hops over the UDP overlay
 *   hyperdht    hyperdht's direct connection (udx + secret-stream), on a local testnet in this process
 *   udx         one raw udx-native stream: the floor under both natmesh direct and hyperdht
 *   libp2p-tcp  stock libp2p, TCP + noise + yamux
 *   node-tcp    a plain Node TCP socket
 *
 * Each path is checked once (an untimed warm-up whose receiver hashes what arrives), then the paths take turns
 * for --rounds rounds of --size-mib in --chunk-kib writes with backpressure; a transfer is timed from the first
 * write to the receiver's ack. CPU per MiB is process.cpuUsage() of both ends (sender and receiver, each read in
 * its own process) over the transfer; for `relayed` the gateway's is reported beside it. Medians; ratios are
 * against hyperdht and raw udx measured in the same run (this machine is noisy: read the ratios).
 *
 * Imports the compiled project from dist/: run `tsc -p tsconfig.json` first (`npm run bench:bulk` does).
 *
 *   node bench/bulk.ts [--size-mib 64] [--rounds 3] [--chunk-kib 64] [--paths direct,session,...]
 *
 * Last line of stdout: {"bench":"bulk","sizeMiB",…,"paths":{"direct":{"MBps","cpuMsPerMiB"},…},
 * "directVsHyperdht":{"throughput","cpu"},"directVsUdx":{…},"sessionVsDirect":…,"goals":{…}} (MB = 10^6 bytes,
 * MiB = 2^20; a path that failed is null). Exit code 1 if any selected path failed.
 */
import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import createTestnet from 'hyperdht/testnet.js'
import type { Testnet } from 'hyperdht/testnet.js'
import { loadOrCreateIdentity } from '../dist/core/identity.js'
import { positiveInteger } from './lib/args.ts'
import type { SendResult } from './lib/bulk-wire.ts'
import type { SendRequest, Stack } from './lib/bulk-child.ts'
import { GatewayProcess } from './lib/gateway-process.ts'
import { median } from './lib/transfer.ts'

const PATHS = ['direct', 'session', 'relayed', 'hyperdht', 'udx', 'libp2p-tcp', 'node-tcp'] as const
type PathName = typeof PATHS[number]
const STACK_OF: Record<PathName, Stack> = { direct: 'natmesh', session: 'natmesh', relayed: 'natmesh', hyperdht: 'hyperdht', udx: 'udx', 'libp2p-tcp': 'libp2p-tcp', 'node-tcp': 'node-tcp' }

const { values: args } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '64' },
    rounds: { type: 'string', default: '3' },
    'chunk-kib': { type: 'string', default: '64' },
    'timeout-s': { type: 'string', default: '60' },
    paths: { type: 'string', default: PATHS.join(',') },
    /** write a --cpu-prof of every child here */
    'cpu-prof-dir': { type: 'string' }
  }
})
const sizeMiB = positiveInteger(args, 'size-mib')
const rounds = positiveInteger(args, 'rounds')
const chunkBytes = positiveInteger(args, 'chunk-kib') * 1024
const timeoutMs = positiveInteger(args, 'timeout-s') * 1000
const sizeBytes = sizeMiB * 2 ** 20
const WARMUP_BYTES = Math.min(sizeBytes, 4 * 2 ** 20)
const selected = args.paths.split(',').map(p => p.trim()) as PathName[]
for (const p of selected) {
  if (!PATHS.includes(p)) {
    console.error(`--paths: unknown path "${p}" (expected ${PATHS.join(', ')})`)
    process.exit(2)
  }
}
const childArgv = args['cpu-prof-dir'] != null ? ['--cpu-prof', `--cpu-prof-dir=${args['cpu-prof-dir']}`] : []

setTimeout(() => {
  console.error('bulk bench: still running after the watchdog; giving up')
  process.exit(2)
}, 120_000 + rounds * selected.length * timeoutMs).unref()

/** one bench/lib/bulk-child.ts process */
class Child {
  private readonly child: ChildProcess
  private readonly pending = new Map<number, { resolve: (v: unknown) => void, reject: (e: Error) => void }>()
  private nextId = 1
  readonly ready: Promise<unknown>

  constructor (stack: Stack, role: 'server' | 'client', options: Record<string, unknown> = {}) {
    this.child = fork(new URL('./lib/bulk-child.ts', import.meta.url), [stack, role, JSON.stringify(options)], { execArgv: childArgv })
    this.ready = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => {
        const err = new Error(`the ${stack} ${role} process exited with code ${code}`)
        reject(err)
        for (const p of this.pending.values()) p.reject(err)
      })
      this.child.on('message', (message: { ready?: unknown, id?: number, result?: unknown, error?: string }) => {
        if (message.ready !== undefined) resolve(message.ready)
        if (message.id == null) return
        const p = this.pending.get(message.id)
        this.pending.delete(message.id)
        if (message.error != null) p?.reject(new Error(message.error))
        else p?.resolve(message.result)
      })
    })
    this.ready.catch(() => {})
  }

  async request<T> (cmd: string, extra: Record<string, unknown> = {}): Promise<T> {
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.child.send({ id, cmd, ...extra })
    })
  }

  async stop (): Promise<void> {
    if (this.child.exitCode != null || this.child.signalCode != null) return
    const exited = new Promise(resolve => this.child.once('exit', resolve))
    this.request('stop').catch(() => {})
    const timer = setTimeout(() => { this.child.kill('SIGKILL') }, 10_000)
    await exited
    clearTimeout(timer)
  }
}

interface Pair { client: Child, server: Child }
interface PathRun { name: PathName, pair?: Pair, error?: string, mbps: number[], cpuMsPerMiB: number[], gatewayCpuMsPerMiB: number[] }

const runs: PathRun[] = selected.map(name => ({ name, mbps: [], cpuMsPerMiB: [], gatewayCpuMsPerMiB: [] }))
const stops: Array<() => Promise<void>> = []
let gateway: GatewayProcess | undefined

async function startPair (stack: Stack, serverOptions: Record<string, unknown>, clientOptions: Record<string, unknown>): Promise<Pair> {
  const server = new Child(stack, 'server', serverOptions)
  const client = new Child(stack, 'client', clientOptions)
  stops.unshift(async () => { await client.stop() }, async () => { await server.stop() })
  const [serverInfo, clientInfo] = await Promise.all([server.ready, client.ready])
  // raw udx has no handshake: both ends connect their stream to the other's
  if (stack === 'udx') await server.request('connect', { info: clientInfo })
  const detail = await client.request<string>('connect', { info: serverInfo })
  console.log(`  ${stack.padEnd(10)} ${detail}`)
  return { client, server }
}

async function setup (): Promise<void> {
  const stacks = new Set(selected.map(p => STACK_OF[p]))
  const pairs = new Map<Stack, Pair>()
  if (stacks.has('natmesh')) {
    const dir = await mkdtemp(join(tmpdir(), 'natmesh-bulk-bench-'))
    stops.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const ids = await Promise.all(['peer-a', 'peer-b'].map(async name => loadOrCreateIdentity(join(dir, `${name}.key`))))
    // both peers allowlisted: their circuits carry no data or duration limit
    const gw = new GatewayProcess(dir, ids.map(id => id.peerId.toString()), childArgv)
    gateway = gw
    stops.unshift(async () => { await gw.stop() })
    const gateways = (await gw.addrs).filter(ma => ma.includes('/udx'))
    pairs.set('natmesh', await startPair('natmesh', { gateways, identityFile: join(dir, 'peer-b.key') }, { gateways, identityFile: join(dir, 'peer-a.key') }))
  }
  if (stacks.has('hyperdht')) {
    const testnet: Testnet = await createTestnet(3, { host: '127.0.0.1' })
    stops.push(async () => { await testnet.destroy() })
    pairs.set('hyperdht', await startPair('hyperdht', { bootstrap: testnet.bootstrap }, { bootstrap: testnet.bootstrap }))
  }
  for (const stack of ['udx', 'libp2p-tcp', 'node-tcp'] as const) {
    if (stacks.has(stack)) pairs.set(stack, await startPair(stack, {}, {}))
  }
  for (const run of runs) run.pair = pairs.get(STACK_OF[run.name])
}

async function transfer (run: PathRun, bytes: number, verify: boolean): Promise<{ mbps: number, cpuMsPerMiB: number, gatewayCpuMsPerMiB: number | null }> {
  const { client, server } = run.pair!
  const cpu = async (): Promise<[number, number, number | null]> => Promise.all([
    client.request<number>('cpu'), server.request<number>('cpu'), run.name === 'relayed' && gateway != null ? gateway.stats().then(s => s.cpuMs) : null
  ])
  const before = await cpu()
  const request: SendRequest = { path: run.name, sizeBytes: bytes, chunkBytes, verify }
  let timer: NodeJS.Timeout | undefined
  const result = await Promise.race([
    client.request<SendResult>('send', { ...request }),
    new Promise<never>((_resolve, reject) => { timer = setTimeout(() => { reject(new Error(`no ack within ${timeoutMs} ms`)) }, timeoutMs) })
  ]).finally(() => { clearTimeout(timer) })
  const after = await cpu()
  const mib = bytes / 2 ** 20
  return {
    mbps: bytes / 1e6 / (result.ms / 1000),
    cpuMsPerMiB: (after[0] - before[0] + after[1] - before[1]) / mib,
    gatewayCpuMsPerMiB: after[2] == null || before[2] == null ? null : (after[2] - before[2]) / mib
  }
}

async function main (): Promise<void> {
  const start = Date.now()
  await setup()
  console.log(`setup ${Date.now() - start} ms; ${sizeMiB} MiB per transfer in ${chunkBytes / 1024} KiB writes, ${rounds} round(s)`)
  for (const run of runs) {
    try {
      await transfer(run, WARMUP_BYTES, true)
    } catch (err) {
      run.error = `warm-up: ${(err as Error).message}`
      console.log(`  ${run.name.padEnd(10)} ${run.error}`)
    }
  }
  for (let round = 1; round <= rounds; round++) {
    for (const run of runs) {
      if (run.error != null) continue
      try {
        const r = await transfer(run, sizeBytes, false)
        run.mbps.push(r.mbps)
        run.cpuMsPerMiB.push(r.cpuMsPerMiB)
        if (r.gatewayCpuMsPerMiB != null) run.gatewayCpuMsPerMiB.push(r.gatewayCpuMsPerMiB)
        console.log(`  ${run.name.padEnd(10)} round ${round}: ${r.mbps.toFixed(1).padStart(7)} MB/s, ${r.cpuMsPerMiB.toFixed(2).padStart(6)} CPU ms/MiB both ends${r.gatewayCpuMsPerMiB != null ? `, gateway ${r.gatewayCpuMsPerMiB.toFixed(2)}` : ''}`)
      } catch (err) {
        run.error = `round ${round}: ${(err as Error).message}`
        console.log(`  ${run.name.padEnd(10)} ${run.error}`)
      }
    }
  }
}

const round = (x: number, digits: number): number => Number(x.toFixed(digits))

function report (): boolean {
  const med = (run: PathRun | undefined, values: (r: PathRun) => number[]): number | null =>
    run == null || run.error != null || values(run).length !== rounds ? null : median(values(run))
  const find = (name: PathName): PathRun | undefined => runs.find(r => r.name === name)
  const mbps = (name: PathName): number | null => med(find(name), r => r.mbps)
  const cpu = (name: PathName): number | null => med(find(name), r => r.cpuMsPerMiB)
  const ratio = (x: number | null, y: number | null): number | null => x == null || y == null || y === 0 ? null : round(x / y, 3)
  const against = (name: PathName, anchor: PathName): { throughput: number | null, cpu: number | null } =>
    ({ throughput: ratio(mbps(name), mbps(anchor)), cpu: ratio(cpu(name), cpu(anchor)) })

  console.log('')
  console.log(`bulk, ${sizeMiB} MiB one way, median of ${rounds} (MB = 10^6 bytes; CPU of sender + receiver per MiB; each end its own process)`)
  const header = ['path', 'MB/s', 'CPU ms/MiB', 'MB/s vs hyperdht', 'CPU vs hyperdht', 'MB/s vs udx', 'CPU vs udx']
  const rows = runs.map(r => {
    const h = against(r.name, 'hyperdht')
    const u = against(r.name, 'udx')
    const fmt = (x: number | null, digits = 2, suffix = ''): string => x == null ? '-' : `${x.toFixed(digits)}${suffix}`
    return [r.name, fmt(mbps(r.name), 1), fmt(cpu(r.name)), fmt(h.throughput, 2, 'x'), fmt(h.cpu, 2, 'x'), fmt(u.throughput, 2, 'x'), fmt(u.cpu, 2, 'x')]
  })
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => r[i]!.length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join('  ')
  console.log(line(header))
  console.log(widths.map(w => '-'.repeat(w)).join('  '))
  for (const r of rows) console.log(line(r))
  const relayed = find('relayed')
  if (relayed != null && relayed.gatewayCpuMsPerMiB.length === rounds) console.log(`relayed: the gateway spent ${median(relayed.gatewayCpuMsPerMiB).toFixed(2)} CPU ms per relayed MiB on top`)
  for (const r of runs) if (r.error != null) console.log(`${r.name}: FAILED ${r.error}`)

  const directVsHyperdht = against('direct', 'hyperdht')
  const sessionVsDirect = ratio(mbps('session'), mbps('direct'))
  console.log(JSON.stringify({
    bench: 'bulk',
    sizeMiB,
    rounds,
    paths: Object.fromEntries(runs.map(r => [r.name, mbps(r.name) == null ? null : { MBps: round(mbps(r.name)!, 1), cpuMsPerMiB: round(cpu(r.name)!, 2) }])),
    relayedGatewayCpuMsPerMiB: relayed != null && relayed.gatewayCpuMsPerMiB.length === rounds ? round(median(relayed.gatewayCpuMsPerMiB), 2) : null,
    directVsHyperdht,
    directVsUdx: against('direct', 'udx'),
    directVsLibp2pTcp: against('direct', 'libp2p-tcp'),
    sessionVsDirect,
    goals: {
      directThroughputVsHyperdhtAtLeast1_1: directVsHyperdht.throughput == null ? null : directVsHyperdht.throughput >= 1.1,
      directCpuVsHyperdhtAtMost1_0: directVsHyperdht.cpu == null ? null : directVsHyperdht.cpu <= 1.0,
      sessionVsDirectAtLeast0_95: sessionVsDirect == null ? null : sessionVsDirect >= 0.95
    }
  }))
  return runs.every(r => r.error == null && r.mbps.length === rounds)
}

let setupOk = false
try {
  await main()
  setupOk = true
} catch (err) {
  console.error('bulk bench: setup failed -', err)
} finally {
  for (const stop of stops) await stop().catch((err: unknown) => { console.error('stopping failed:', err) })
}
const ok = report()
process.exitCode = setupOk && ok ? 0 : 1
