/**
 * A gateway in a process of its own, driven over IPC by bench/relay.ts, so its CPU time and memory are its own.
 * Forked with --expose-gc. argv: <dir> <comma-separated allowlist> [relay workers, default the config's]. Messages in: {cmd: 'stats'}, {cmd: 'gc'}
 * (collect, then stats), {cmd: 'stop'}. Messages out: {addrs, stunPorts} once started, then one {stats} per request.
 *
 * Imports the compiled project from dist/ (run `tsc -p tsconfig.json` first).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { loadGatewayConfig } from '../../dist/config/index.js'
import { createGateway } from '../../dist/gateway/gateway.js'
import { loadOrCreateIdentity } from '../../dist/core/identity.js'
import { createLogger } from '../../dist/core/logging.js'

export interface GatewayStats {
  /** user + system CPU time of this process so far, ms */
  cpuMs: number
  rss: number
  heapUsed: number
  arrayBuffers: number
  /** bytes the relay holds for its circuits now, and the most one circuit ever held (absent on builds without the counter) */
  relayBuffered?: number
  relayBufferedPeakPerCircuit?: number
  /** CPU time of each thread of this process so far (Linux /proc), ms; the main thread's tid is the pid */
  threads: ThreadCpu[]
  mainTid: number
}

export interface ThreadCpu { tid: number, cpuMs: number }

/** user + system time of every thread, from /proc/self/task/<tid>/stat (fields 14 and 15, in clock ticks) */
function threadCpu (): ThreadCpu[] {
  const threads: ThreadCpu[] = []
  for (const tid of readdirSync('/proc/self/task')) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8')
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
      threads.push({ tid: Number(tid), cpuMs: (Number(fields[11]) + Number(fields[12])) * MS_PER_TICK })
    } catch {
      // the thread ended between the listing and the read
    }
  }
  return threads
}

/** USER_HZ, 100 on every Linux architecture natmesh runs on */
const MS_PER_TICK = 10
const [dir, allowlist, relayWorkers] = process.argv.slice(2)
if (dir == null || process.send == null) throw new Error('relay-gateway-process: run me with fork(), argv <dir> <allowlist>')
const config = await loadGatewayConfig({
  env: {},
  flags: {
    host: '127.0.0.1',
    udpPort: 0,
    tcpPort: 0,
    api: '127.0.0.1:0',
    stunPort: 0,
    stunOtherPort: 0,
    identityFile: join(dir, 'gateway.key'),
    allowlist: (allowlist ?? '').split(',').filter(id => id !== ''),
    maxCircuitsPerPeer: 256,
    ...(relayWorkers != null ? { relayWorkers } : {}),
    logLevel: 'silent'
  }
})
const identity = await loadOrCreateIdentity(config.identityFile)
const gateway = await createGateway(config, { privateKey: identity.privateKey, logger: createLogger({ level: 'silent' }), registry: new Registry() })
await gateway.start()

function stats (): GatewayStats {
  const cpu = process.cpuUsage()
  const memory = process.memoryUsage()
  const buffers = (gateway as { relayBuffers?: { current: number, peakPerCircuit: number } }).relayBuffers
  return {
    cpuMs: (cpu.user + cpu.system) / 1000,
    rss: memory.rss,
    heapUsed: memory.heapUsed,
    arrayBuffers: memory.arrayBuffers,
    relayBuffered: buffers?.current,
    relayBufferedPeakPerCircuit: buffers?.peakPerCircuit,
    threads: threadCpu(),
    mainTid: process.pid
  }
}

process.on('message', (message: { cmd: string }) => {
  if (message.cmd === 'gc') {
    // twice: the first pass may only queue finalizers of native buffers
    globalThis.gc?.()
    globalThis.gc?.()
  }
  if (message.cmd === 'stop') {
    void gateway.stop().finally(() => { process.exit(0) })
    return
  }
  process.send?.({ stats: stats() })
})
process.on('disconnect', () => { process.exit(0) })
process.send({ addrs: gateway.node.getMultiaddrs().map(String), stunPorts: gateway.stun?.addresses().map(a => a.port) ?? [] })
