/**
 * What the session layer costs on a direct connection: one bulk transfer (default 64 MiB in 64 KiB messages) as a
 * session and as a raw libp2p stream, over the same direct (hole-punched, UDP overlay) connection between two
 * peers in this process on 127.0.0.1. Timed from the first write until the receiver holds every byte; CPU is
 * process.cpuUsage() over the same interval. Both ends, and the idle gateway, share this process and its event
 * loop, so absolute MB/s and CPU ms are a loopback, single-process figure: the session/raw ratios are what to read.
 *
 * Neither side hashes or copies the payload (the receivers count bytes), so the difference is the session layer:
 * framing, sequence numbers and acknowledgements, the resend buffer, its own backpressure.
 */
import { performance } from 'node:perf_hooks'
import type { Connection, Stream } from '@libp2p/interface'
import type { Session } from '../../dist/upgrade/session.js'
import { waitFor } from '../../test/helpers/wait-for.ts'
import { startMesh } from './nodes.ts'
import type { BenchMesh } from './nodes.ts'

const RAW_PROTOCOL = '/natmesh/bench/upgrade-raw/1.0.0'
const SESSION_PROTOCOL = '/natmesh/bench/upgrade-session/1.0.0'

export interface OverheadRun {
  kind: 'raw' | 'session'
  bytes: number
  ms: number
  mbps: number
  /** user + system CPU ms over the transfer, per MiB */
  cpuMsPerMiB: number
}

export interface OverheadResult {
  runs: OverheadRun[]
  rawMBps: number
  sessionMBps: number
  rawCpuMsPerMiB: number
  sessionCpuMsPerMiB: number
  /** session throughput / raw throughput */
  throughputRatio: number
  /** session CPU per byte / raw CPU per byte */
  cpuRatio: number
  connection: string
  sessionPath: string
}

/** the receiving side: counts bytes until the expected number arrived */
interface Sink {
  expect: (bytes: number) => Promise<number>
  add: (bytes: number) => void
}

function sink (): Sink {
  let expected = 0
  let got = 0
  let done: ((at: number) => void) | undefined
  return {
    expect: async (bytes) => {
      expected = bytes
      got = 0
      return await new Promise(resolve => { done = resolve })
    },
    add: (bytes) => {
      got += bytes
      if (got >= expected && done !== undefined) { const d = done; done = undefined; d(performance.now()) }
    }
  }
}

async function drained (stream: Stream): Promise<void> {
  // not stream.onDrain(): see bench/lib/transfer.ts
  await new Promise<void>((resolve, reject) => {
    const onDrain = (): void => { stream.removeEventListener('close', onClose); resolve() }
    const onClose = (): void => { stream.removeEventListener('drain', onDrain); reject(new Error('stream closed while waiting for drain')) }
    stream.addEventListener('drain', onDrain, { once: true })
    stream.addEventListener('close', onClose, { once: true })
  })
}

async function rawTransfer (connection: Connection, payload: Uint8Array, chunk: number, rx: Sink, timeoutMs: number): Promise<{ ms: number, cpuMs: number }> {
  const stream = await connection.newStream(RAW_PROTOCOL, { signal: AbortSignal.timeout(5000) })
  const arrived = rx.expect(payload.byteLength)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const timer = setTimeout(() => { stream.abort(new Error(`raw transfer: no completion within ${timeoutMs} ms`)) }, timeoutMs)
  try {
    for (let off = 0; off < payload.byteLength; off += chunk) {
      if (!stream.send(payload.subarray(off, off + chunk))) await drained(stream)
    }
    const at = await Promise.race([arrived, new Promise<never>((_resolve, reject) => { stream.addEventListener('close', () => { reject(new Error('raw stream closed before the receiver had everything')) }) })])
    const cpu = process.cpuUsage(cpu0)
    await stream.close().catch(() => {})
    return { ms: at - t0, cpuMs: (cpu.user + cpu.system) / 1000 }
  } finally {
    clearTimeout(timer)
  }
}

async function sessionTransfer (session: Session, payload: Uint8Array, chunk: number, rx: Sink, timeoutMs: number): Promise<{ ms: number, cpuMs: number }> {
  const arrived = rx.expect(payload.byteLength)
  const cpu0 = process.cpuUsage()
  const t0 = performance.now()
  const timer = setTimeout(() => { session.abort(new Error(`session transfer: no completion within ${timeoutMs} ms`)) }, timeoutMs)
  try {
    for (let off = 0; off < payload.byteLength; off += chunk) await session.send(payload.subarray(off, off + chunk))
    const at = await arrived
    const cpu = process.cpuUsage(cpu0)
    return { ms: at - t0, cpuMs: (cpu.user + cpu.system) / 1000 }
  } finally {
    clearTimeout(timer)
  }
}

function median (values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1 ? sorted[mid] as number : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

export async function measureOverhead (options: { sizeMiB: number, runs: number, chunkKiB: number, timeoutMs: number, log: (line: string) => void }): Promise<OverheadResult> {
  const mesh: BenchMesh = await startMesh()
  try {
    const { a, b } = mesh
    const rawRx = sink()
    const sessionRx = sink()
    await b.node.handle(RAW_PROTOCOL, (stream) => {
      stream.addEventListener('message', (evt) => { rawRx.add(evt.data.byteLength) })
    })
    b.handleSessions(SESSION_PROTOCOL, (session) => {
      void (async () => { for await (const m of session) sessionRx.add(m.byteLength) })().catch(() => {})
    })
    await a.connect(b.peerId.toString())
    const direct = await a.waitForDirect(b.peerId, 15_000)
    if (direct == null) throw new Error('no direct connection within 15 s (hole punch failed?)')
    const session = await a.openSession(b.peerId.toString(), SESSION_PROTOCOL)
    await waitFor(() => session.path === 'direct', 10_000, 'the session on the direct path')
    const chunk = options.chunkKiB * 1024
    const size = options.sizeMiB * 1024 * 1024
    const payload = new Uint8Array(size)
    for (let i = 0; i < size; i += 4096) payload[i] = i & 0xff
    // warm-up, untimed
    const warm = payload.subarray(0, Math.min(size, 8 * 1024 * 1024))
    await rawTransfer(direct, warm, chunk, rawRx, options.timeoutMs)
    await sessionTransfer(session, warm, chunk, sessionRx, options.timeoutMs)

    const runs: OverheadRun[] = []
    for (let r = 1; r <= options.runs; r++) {
      for (const kind of ['raw', 'session'] as const) {
        if (direct.status !== 'open') throw new Error(`the direct connection is ${direct.status}`)
        const { ms, cpuMs } = kind === 'raw'
          ? await rawTransfer(direct, payload, chunk, rawRx, options.timeoutMs)
          : await sessionTransfer(session, payload, chunk, sessionRx, options.timeoutMs)
        const run = { kind, bytes: size, ms, mbps: size / 1e6 / (ms / 1000), cpuMsPerMiB: cpuMs / options.sizeMiB }
        runs.push(run)
        options.log(`  overhead run ${r} ${kind.padEnd(7)} ${run.mbps.toFixed(1).padStart(6)} MB/s, ${run.cpuMsPerMiB.toFixed(2)} CPU ms/MiB (${(ms / 1000).toFixed(2)} s)`)
      }
    }
    const sessionPath = session.stats().path
    await session.close().catch(() => {})
    const pick = (kind: 'raw' | 'session', f: (r: OverheadRun) => number): number => median(runs.filter(r => r.kind === kind).map(f))
    const rawMBps = pick('raw', r => r.mbps)
    const sessionMBps = pick('session', r => r.mbps)
    const rawCpuMsPerMiB = pick('raw', r => r.cpuMsPerMiB)
    const sessionCpuMsPerMiB = pick('session', r => r.cpuMsPerMiB)
    return {
      runs,
      rawMBps,
      sessionMBps,
      rawCpuMsPerMiB,
      sessionCpuMsPerMiB,
      throughputRatio: sessionMBps / rawMBps,
      cpuRatio: sessionCpuMsPerMiB / rawCpuMsPerMiB,
      connection: direct.remoteAddr.toString(),
      sessionPath
    }
  } finally {
    await mesh.stop()
  }
}
