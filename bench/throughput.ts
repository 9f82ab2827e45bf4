/**
 * Throughput of one bulk transfer (default 64 MiB in 64 KiB writes, with backpressure) over three paths:
 *
 *   direct   peer A → peer B over the direct UDP overlay (udx) connection the hole punch set up on loopback
 *   relayed  peer A → gateway → peer B: the circuit-relay connection, both hops over the UDP overlay
 *   tcp      two stock libp2p nodes, TCP + noise + yamux: the reference
 *
 * Each transfer runs on a fresh stream over the same connections, is timed from the first write to the
 * receiver's ack (sent once it holds every byte), and is checked: the receiver hashes what arrives (sha256,
 * incrementally) and the sender compares that with the sha256 of what it sent. Paths take turns, round by
 * round, after one small untimed warm-up transfer each; the median of the rounds is reported.
 *
 * All nodes (gateway, both peers, both TCP nodes) share this one process and its one CPU thread: sender,
 * receiver and relay compete for the same event loop, and the relay's work is on top of the peers'. The
 * absolute MB/s are therefore a loopback, single-process figure, not a network one; the ratios
 * (direct vs tcp, relayed vs direct) are what to read.
 *
 * Imports the compiled project from dist/: run `tsc -p tsconfig.json` first.
 *
 *   node bench/throughput.ts [--size-mib 64] [--runs 3] [--chunk-kib 64] [--timeout-s 20] [--paths direct,relayed,tcp]
 *
 * Last line of stdout: {"bench":"throughput","sizeMiB":64,"directMBps":…,"relayedMBps":…,"tcpMBps":…,
 * "directVsTcp":…,"relayedVsDirect":…} (MB = 10^6 bytes; a path that failed is null). Exit code 1 if any
 * path failed (stall, checksum mismatch, connection lost).
 */
import { parseArgs } from 'node:util'
import type { Connection } from '@libp2p/interface'
import { startMesh, startTcpPair } from './lib/nodes.ts'
import type { BenchMesh, TcpPair } from './lib/nodes.ts'
import { handleThroughput, makePayload, median, mib, sendPayload } from './lib/transfer.ts'
import type { Payload } from './lib/transfer.ts'
import { positiveInteger } from './lib/args.ts'

const { values: args } = parseArgs({
  options: {
    'size-mib': { type: 'string', default: '64' },
    runs: { type: 'string', default: '3' },
    'chunk-kib': { type: 'string', default: '64' },
    'timeout-s': { type: 'string', default: '20' },
    /** comma-separated subset of direct,relayed,tcp (for profiling one path); the others report null */
    paths: { type: 'string', default: 'direct,relayed,tcp' }
  }
})
const sizeMiB = positive('size-mib')
const runs = positive('runs')
const chunkBytes = positive('chunk-kib') * 1024
const timeoutMs = positive('timeout-s') * 1000
const sizeBytes = sizeMiB * 1024 * 1024
const WARMUP_BYTES = Math.min(sizeBytes, 4 * 1024 * 1024)
const DIRECT_WAIT_MS = 15_000

// the last resort: whatever hangs (a stop() that never returns, a stuck setup), the process still ends
const WATCHDOG_MS = 30_000 + runs * 3 * (timeoutMs + 5_000)
setTimeout(() => {
  console.error(`throughput bench: still running after ${WATCHDOG_MS / 1000} s; giving up`)
  process.exit(2)
}, WATCHDOG_MS).unref()

type PathName = 'direct' | 'relayed' | 'tcp'

interface PathRun {
  name: PathName
  connection?: Connection
  /** why the path could not run at all, or why it stopped */
  error?: string
  mbps: number[]
  ms: number[]
}

const paths: PathRun[] = [
  { name: 'direct', mbps: [], ms: [] },
  { name: 'relayed', mbps: [], ms: [] },
  { name: 'tcp', mbps: [], ms: [] }
]
const path = (name: PathName): PathRun => paths.find(p => p.name === name)!
const selected = new Set(args.paths.split(',').map(name => name.trim()))
for (const name of selected) {
  if (path(name as PathName) == null) {
    console.error(`--paths: unknown path "${name}" (expected direct, relayed, tcp)`)
    process.exit(2)
  }
}
for (const p of paths) if (!selected.has(p.name)) p.error = 'not selected (--paths)'

let mesh: BenchMesh | undefined
let tcpPair: TcpPair | undefined

async function main (): Promise<void> {
  const setupStart = Date.now()
  mesh = await startMesh()
  const { a, b } = mesh
  await handleThroughput(b.node)

  const relayed = await a.connect(b.peerId.toString())
  path('relayed').connection = relayed
  const direct = await a.waitForDirect(b.peerId, DIRECT_WAIT_MS)
  if (direct == null) path('direct').error = `no direct connection within ${DIRECT_WAIT_MS} ms (hole punch failed?)`
  else path('direct').connection = direct

  tcpPair = await startTcpPair()
  await handleThroughput(tcpPair.b)
  path('tcp').connection = await tcpPair.a.dial(tcpPair.b.getMultiaddrs()[0]!)

  const gatewayHops = a.node.getConnections(mesh.gateway.node.peerId).map(c => c.remoteAddr.toString())
  console.log(`setup ${Date.now() - setupStart} ms; ${sizeMiB} MiB per transfer in ${chunkBytes / 1024} KiB writes, ${runs} run(s) per path, timeout ${timeoutMs / 1000} s per transfer`)
  for (const p of paths) {
    const c = p.connection
    if (c == null) continue
    // the relay client's limits are non-enumerable getters: read them by name
    const limits = c.limits == null ? 'unlimited' : `LIMITED to ${c.limits.bytes ?? '∞'} more bytes, ${c.limits.seconds ?? '∞'} more s`
    console.log(`  ${p.name.padEnd(8)} ${c.remoteAddr.toString()} (${c.multiplexer ?? '?'}, ${c.encryption ?? '?'}, ${limits})`)
  }
  console.log(`  peer A's gateway hop: ${gatewayHops.join(', ') || 'none'}`)

  let payload: Payload = makePayload(WARMUP_BYTES)
  for (const p of paths) {
    if (p.connection == null || p.error != null) continue
    try {
      await sendPayload(p.connection, payload, { chunkBytes, timeoutMs, label: `${p.name} warm-up` })
    } catch (err) {
      p.error = String((err as Error).message ?? err)
      console.log(`  ${p.name.padEnd(8)} warm-up: FAILED - ${p.error}`)
    }
  }

  let buffer: Uint8Array | undefined
  for (let round = 1; round <= runs; round++) {
    for (const p of paths) {
      if (p.connection == null || p.error != null) continue
      if (p.connection.status !== 'open') {
        p.error = `the connection was ${p.connection.status} before run ${round}`
        continue
      }
      payload = makePayload(sizeBytes, buffer)
      buffer = payload.bytes
      try {
        const result = await sendPayload(p.connection, payload, { chunkBytes, timeoutMs, label: `${p.name} run ${round}` })
        p.mbps.push(result.mbps)
        p.ms.push(result.ms)
        console.log(`  ${p.name.padEnd(8)} run ${round}: ${result.mbps.toFixed(1).padStart(7)} MB/s (${(result.ms / 1000).toFixed(2)} s, sha256 ok, up to ${mib(result.maxInFlight)} MiB written but not yet read)`)
      } catch (err) {
        p.error = String((err as Error).message ?? err)
        console.log(`  ${p.name.padEnd(8)} run ${round}: FAILED - ${p.error}`)
      }
    }
  }
  if (path('relayed').connection?.status !== 'open') {
    console.log(`  note: the relayed connection is ${path('relayed').connection?.status} after the runs`)
  }
}

function report (): boolean {
  const med = (p: PathRun): number | null => p.error == null && p.mbps.length === runs ? median(p.mbps) : null
  const directMBps = med(path('direct'))
  const relayedMBps = med(path('relayed'))
  const tcpMBps = med(path('tcp'))
  const ratio = (x: number | null, y: number | null): number | null => x == null || y == null || y === 0 ? null : round(x / y, 3)

  console.log('')
  console.log(`throughput, ${sizeMiB} MiB per transfer, median of ${runs} (MB/s, MB = 10^6 bytes; all nodes in one process)`)
  const header = ['path', ...Array.from({ length: runs }, (_v, i) => `run ${i + 1}`), 'median', 'vs tcp']
  const rows = paths.map(p => [
    p.name,
    ...Array.from({ length: runs }, (_v, i) => p.mbps[i]?.toFixed(1) ?? '-'),
    med(p)?.toFixed(1) ?? 'FAILED',
    med(p) != null && tcpMBps != null ? `${(med(p)! / tcpMBps).toFixed(2)}x` : '-'
  ])
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map(r => r[i]!.length)))
  const line = (cells: string[]): string => cells.map((c, i) => i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!)).join('  ')
  console.log(line(header))
  console.log(widths.map(w => '-'.repeat(w)).join('  '))
  for (const r of rows) console.log(line(r))
  for (const p of paths) if (p.error != null) console.log(`${p.name}: ${p.error}`)
  console.log(`direct/tcp ${ratio(directMBps, tcpMBps) ?? '-'}, relayed/direct ${ratio(relayedMBps, directMBps) ?? '-'}`)

  console.log(JSON.stringify({
    bench: 'throughput',
    sizeMiB,
    directMBps: directMBps == null ? null : round(directMBps, 2),
    relayedMBps: relayedMBps == null ? null : round(relayedMBps, 2),
    tcpMBps: tcpMBps == null ? null : round(tcpMBps, 2),
    directVsTcp: ratio(directMBps, tcpMBps),
    relayedVsDirect: ratio(relayedMBps, directMBps)
  }))
  return paths.every(p => !selected.has(p.name) || med(p) != null)
}

async function stopAll (): Promise<void> {
  await tcpPair?.stop().catch((err: unknown) => { console.error('stopping the TCP nodes failed:', err) })
  await mesh?.stop()
}

function round (x: number, digits: number): number {
  return Number(x.toFixed(digits))
}

function positive (name: keyof typeof args): number {
  return positiveInteger(args, name)
}

let setupOk = false
try {
  await main()
  setupOk = true
} catch (err) {
  console.error('throughput bench: setup failed -', err)
} finally {
  await stopAll()
}
const allPaths = report()
process.exitCode = setupOk && allPaths ? 0 : 1
