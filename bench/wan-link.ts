/**
 * What the lab's WAN emulator (lab/wan-link.py) costs by itself, set to 0 ms delay, 0 jitter, 0 % loss: two public
 * peer slots, one with the emulator on its link and one without (the anchor, same run), each talking to the
 * gateway namespace:
 *   - added latency: UDP echo RTT median and p95 (`--probes` datagrams, 2 ms apart), emulator minus anchor;
 *   - throughput ceiling: one TCP stream written as fast as it goes for `--seconds` (bytes written / time);
 *   - CPU: the forwarder process's user+system time over that stream, as a share of one core.
 *
 *   node bench/wan-link.ts [--probes 500] [--seconds 3]
 *
 * Needs root and python3. The last stdout line is one JSON object.
 */
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { execFileSync } from 'node:child_process'
import { parseArgs } from 'node:util'
import { positiveInteger } from './lib/args.ts'
import { createTopology } from '../dist/lab/topology.js'

const { values: args } = parseArgs({ options: { probes: { type: 'string', default: '500' }, seconds: { type: 'string', default: '3' } } })
const probes = positiveInteger(args, 'probes')
const seconds = positiveInteger(args, 'seconds')
const PROBE = fileURLToPath(new URL('../test/helpers/net-probe.mjs', import.meta.url))
const CLK_TCK = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim())

if (process.getuid?.() !== 0) {
  console.error('bench:wan-link needs root (network namespaces, raw sockets)')
  process.exit(2)
}

function cpuTicks (pid: number): number {
  // fields after the command name (which is in parentheses): utime and stime are the 14th and 15th fields
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12])
}

function quantile (values: number[], q: number): number {
  const sorted = [...values].sort((x, y) => x - y)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number
}

const topo = await createTopology({ prefix: `nm-wb${process.pid % 100000}-`, peers: { E: 'public', P: 'public' }, wan: { E: {} } })
try {
  const server = topo.spawnIn(topo.gateway(0), process.execPath, [PROBE, 'serve'], { stdio: ['pipe', 'pipe', 'inherit'] })
  const ports = await new Promise<{ port: number, tcpPort: number }>((resolve, reject) => {
    server.stdout?.setEncoding('utf8').once('data', (line: string) => { resolve(JSON.parse(line) as { port: number, tcpPort: number }) })
    server.once('exit', (code) => { reject(new Error(`net-probe serve exited (${code})`)) })
  })
  // the emulator's namespace runs nothing but the forwarder
  const forwarder = Number(execFileSync('ip', ['netns', 'pids', topo.wanLink('E')], { encoding: 'utf8' }).trim().split('\n')[0])
  const gw = topo.gatewayIp(0)
  const run = async (slot: string, argv: string[]): Promise<Record<string, unknown>> =>
    JSON.parse((await topo.exec(topo.peer(slot), [process.execPath, PROBE, ...argv], { timeoutMs: 120_000 })).stdout) as Record<string, unknown>

  const rtt = async (slot: string): Promise<{ median: number, p95: number, lost: number }> => {
    const r = await run(slot, ['probe', gw, String(ports.port), String(probes), '2']) as { sent: number, rttsMs: number[] }
    return { median: quantile(r.rttsMs, 0.5), p95: quantile(r.rttsMs, 0.95), lost: r.sent - r.rttsMs.length }
  }
  const throughput = async (slot: string): Promise<number> => {
    const r = await run(slot, ['tcp-send', gw, String(ports.tcpPort), String(seconds)]) as { bytes: number, ms: number }
    return Number((r.bytes / r.ms / 1000).toFixed(1))
  }

  const anchorRtt = await rtt('P')
  const emuRtt = await rtt('E')
  const anchorMBps = await throughput('P')
  const cpu0 = cpuTicks(forwarder)
  const t0 = Date.now()
  const emuMBps = await throughput('E')
  const cpuShare = Number(((cpuTicks(forwarder) - cpu0) / CLK_TCK / ((Date.now() - t0) / 1000)).toFixed(2))
  server.stdin?.end()

  console.log(`UDP echo RTT, ${probes} probes: without emulator median ${anchorRtt.median} ms, p95 ${anchorRtt.p95} ms; ` +
    `through it (0 ms setting) median ${emuRtt.median} ms, p95 ${emuRtt.p95} ms, lost ${emuRtt.lost}`)
  console.log(`one TCP stream, ${seconds} s: without emulator ${anchorMBps} MB/s; through it ${emuMBps} MB/s, forwarder CPU ${Math.round(cpuShare * 100)} % of a core`)
  console.log(JSON.stringify({
    bench: 'wan-link',
    rttMs: { anchor: anchorRtt, emulator: emuRtt, addedMedian: Number((emuRtt.median - anchorRtt.median).toFixed(2)) },
    tcpMBps: { anchor: anchorMBps, emulator: emuMBps, ratio: Number((emuMBps / anchorMBps).toFixed(3)) },
    forwarderCpuShare: cpuShare
  }))
} finally {
  await topo.down()
}
