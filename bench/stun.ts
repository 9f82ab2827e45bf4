/**
 * STUN requests per second one gateway serves: a real `natmesh gateway` process on loopback (STUN on ephemeral
 * ports), loaded by bench/lib/stun-load.ts from this process, twice:
 *
 *   unlimited   the gateway runs with --stun-rate-per-second 0: what its STUN server can answer from one source
 *   limited     the gateway's default limit (100 req/s, burst 200, per source IP): what one source IP is granted
 *
 * One source IP, one socket, 64 requests in flight. Gateway and load generator share this machine's cores, so the
 * unlimited figure is a lower bound of what the gateway alone could do.
 *
 *   node bench/stun.ts [--duration-s 3] [--window 64]
 *
 * Last line of stdout: {"bench":"stun","unlimitedRequestsPerSecond":…,"limitedRequestsPerSecond":…,
 * "limit":{"ratePerSecond":100,"burst":200},"source":"one IP"}
 */
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { positiveInteger } from './lib/args.ts'
import { measureStunRate } from './lib/stun-load.ts'
import type { StunLoadResult } from './lib/stun-load.ts'

const { values: args } = parseArgs({ options: { 'duration-s': { type: 'string', default: '3' }, window: { type: 'string', default: '64' } } })
const durationMs = positiveInteger(args, 'duration-s') * 1000
const window = positiveInteger(args, 'window')
const CLI = fileURLToPath(new URL('../dist/cli/index.js', import.meta.url))
const LIMIT = { ratePerSecond: 100, burst: 200 }

setTimeout(() => {
  console.error('stun bench: still running after 60 s; giving up')
  process.exit(2)
}, 60_000 + 2 * durationMs).unref()

/** Runs a gateway with the given STUN flags, measures against its primary STUN port, stops it. */
async function measure (stunFlags: string[]): Promise<StunLoadResult> {
  const dir = await mkdtemp(join(tmpdir(), 'natmesh-bench-stun-'))
  const gateway = spawn(process.execPath, [
    CLI, 'gateway', '--host', '127.0.0.1', '--udp-port', '0', '--tcp-port', '0', '--api', '127.0.0.1:0',
    '--stun-port', '0', '--stun-other-port', '0', '--identity-file', join(dir, 'gateway.key'), '--json', '--log-level', 'warn', ...stunFlags
  ], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const stun = await new Promise<string>((resolve, reject) => {
      gateway.once('exit', (code) => { reject(new Error(`gateway exited (${code}) before it started`)) })
      createInterface({ input: gateway.stdout }).on('line', (line) => {
        const event = JSON.parse(line) as { event: string, stun?: string[] }
        if (event.event === 'gateway-started' && event.stun?.[0] != null) resolve(event.stun[0])
      })
    })
    const [address, port] = stun.split(':')
    return await measureStunRate({ target: { address: address as string, port: Number(port) }, durationMs, window })
  } finally {
    gateway.kill('SIGTERM')
    await rm(dir, { recursive: true, force: true })
  }
}

const unlimited = await measure(['--stun-rate-per-second', '0'])
console.log(`unlimited: ${unlimited.requestsPerSecond} req/s (${unlimited.answered} answered, ${unlimited.lost} lost in ${unlimited.durationMs} ms)`)
const limited = await measure(['--stun-rate-per-second', String(LIMIT.ratePerSecond), '--stun-burst', String(LIMIT.burst)])
console.log(`limited:   ${limited.requestsPerSecond} req/s (${limited.answered} answered of ${limited.sent} sent in ${limited.durationMs} ms; expected about ${LIMIT.burst} + ${LIMIT.ratePerSecond}/s)`)
console.log(JSON.stringify({
  bench: 'stun',
  unlimitedRequestsPerSecond: unlimited.requestsPerSecond,
  limitedRequestsPerSecond: limited.requestsPerSecond,
  limit: LIMIT,
  source: 'one IP',
  durationMs
}))
process.exit(0)
