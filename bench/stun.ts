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
import { parseArgs } from 'node:util'
import { positiveInteger } from './lib/args.ts'
import { measureGatewayStunRate } from './lib/stun-load.ts'

const { values: args } = parseArgs({ options: { 'duration-s': { type: 'string', default: '3' }, window: { type: 'string', default: '64' } } })
const durationMs = positiveInteger(args, 'duration-s') * 1000
const window = positiveInteger(args, 'window')
const LIMIT = { ratePerSecond: 100, burst: 200 }

setTimeout(() => {
  console.error('stun bench: still running after 60 s; giving up')
  process.exit(2)
}, 60_000 + 2 * durationMs).unref()

const unlimited = await measureGatewayStunRate(['--stun-rate-per-second', '0'], { durationMs, window })
console.log(`unlimited: ${unlimited.requestsPerSecond} req/s (${unlimited.answered} answered, ${unlimited.lost} lost in ${unlimited.durationMs} ms)`)
const limited = await measureGatewayStunRate(['--stun-rate-per-second', String(LIMIT.ratePerSecond), '--stun-burst', String(LIMIT.burst)], { durationMs, window })
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
