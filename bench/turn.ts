/**
 * The gateway's TURN side on loopback, with the real coturn it supervises:
 *
 *   coturn start      spawn to answering STUN (the supervisor's readiness check), median of --starts
 *   allocation        an authenticated TURN Allocate as ICE agents do it (401 challenge + Allocate: two round
 *                     trips), and the whole check the health monitor runs (plus the Refresh that releases it)
 *   ICE servers       GET /api/v1/ice/servers (bearer token, rate limiter on) and /natmesh/ice-servers/1.0.0
 *                     over an open libp2p connection, each with a freshly minted credential
 *   recovery          coturn killed (SIGKILL) until an allocation succeeds again, with the default 1 s restart delay
 *
 * Everything is in this process on 127.0.0.1 except coturn, so the figures are software cost, not network RTT.
 * Imports the compiled project from dist/: run `tsc -p tsconfig.json` first.
 *
 *   node bench/turn.ts [--requests 200] [--starts 3]
 *
 * Last line of stdout: {"bench":"turn","coturnStartMs":…,"allocateMs":{"median":…,"p95":…},"probeMs":{…},
 * "httpApiMs":{…},"libp2pMs":{…},"recoveryMs":…}
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { Registry } from 'prom-client'
import { loadGatewayConfig } from '../dist/config/index.js'
import { createGateway } from '../dist/gateway/gateway.js'
import { TurnService } from '../dist/turn/coturn/turn-service.js'
import { loadOrCreateIdentity } from '../dist/core/identity.js'
import { createLogger } from '../dist/core/logging.js'
import { fetchIceServers } from '../dist/ice-servers/client.js'
import { probeTurnAllocation } from '../dist/turn/client/allocate.js'
import type { TurnEndpoint } from '../dist/turn/client/allocate.js'
import { freeUdpTcpPort } from '../test/helpers/free-port.ts'
import { positiveInteger } from './lib/args.ts'
import { quantile } from '../test/helpers/session-lab.ts'

const { values: args } = parseArgs({ options: { requests: { type: 'string', default: '200' }, starts: { type: 'string', default: '3' } } })
const requests = positiveInteger(args, 'requests')
const starts = positiveInteger(args, 'starts')
const TOKEN = 'bench-token-0123456789abcdef'
const PROBE = { rtoMs: 500, retransmissions: 2 }

setTimeout(() => {
  console.error('turn bench: still running after 120 s; giving up')
  process.exit(2)
}, 120_000).unref()

const dir = await mkdtemp(join(tmpdir(), 'natmesh-bench-turn-'))
const logger = createLogger({ level: 'warn' })

async function timed (what: () => Promise<unknown>): Promise<number> {
  const started = performance.now()
  await what()
  return performance.now() - started
}

function summary (values: number[]): { median: number | null, p95: number | null } {
  const round = (value: number | null): number | null => value == null ? null : Math.round(value * 100) / 100
  return { median: round(quantile(values, 0.5)), p95: round(quantile(values, 0.95)) }
}

try {
  const port = await freeUdpTcpPort()
  await writeFile(join(dir, 'gateway.yaml'), [
    'turn:',
    '  enabled: true',
    '  required: true',
    `  port: ${port}`,
    `  stateDir: ${join(dir, 'turn')}`,
    `  secretFile: ${join(dir, 'turn-secret')}`,
    '  relayPortRange: { min: 50500, max: 50999 }',
    'iceServers:',
    `  apiToken: ${TOKEN}`,
    `  rateLimit: { max: ${requests * 10}, windowMs: 60000 }`
  ].join('\n'))
  const config = await loadGatewayConfig({
    file: join(dir, 'gateway.yaml'),
    env: {},
    flags: { host: '127.0.0.1', udpPort: 0, tcpPort: 0, api: '127.0.0.1:0', identityFile: join(dir, 'gateway.key') }
  })

  const startMs: number[] = []
  for (let i = 0; i < starts; i++) {
    const turn = new TurnService({ config: config.turn, gatewayHost: config.host, announce: [], logger })
    startMs.push(await timed(async () => { await turn.start() }))
    await turn.stop()
  }

  const identity = await loadOrCreateIdentity(config.identityFile)
  const gateway = await createGateway(config, { privateKey: identity.privateKey, logger, registry: new Registry() })
  await gateway.start()
  const client = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
  try {
    const tcpAddr = gateway.node.getMultiaddrs().find(ma => ma.toString().includes('/tcp/'))
    if (tcpAddr == null) throw new Error('gateway has no TCP address')
    await client.dial(tcpAddr)

    const endpoint = async (): Promise<TurnEndpoint> => {
      const { iceServers } = await fetchIceServers(client, gateway.node.peerId)
      const turn = iceServers.find(server => server.username != null)
      if (turn?.username == null || turn.credential == null) throw new Error('no TURN server handed out')
      return { host: '127.0.0.1', port, username: turn.username, credential: turn.credential }
    }

    const allocateMs: number[] = []
    const probeMs: number[] = []
    const credential = await endpoint()
    for (let i = 0; i < requests; i++) {
      let latency = 0
      probeMs.push(await timed(async () => { latency = (await probeTurnAllocation(credential, PROBE)).latencyMs }))
      allocateMs.push(latency)
    }

    const httpApiMs: number[] = []
    for (let i = 0; i < requests; i++) {
      httpApiMs.push(await timed(async () => {
        const response = await fetch(new URL('/api/v1/ice/servers', gateway.apiUrl), { headers: { authorization: `Bearer ${TOKEN}` } })
        if (response.status !== 200) throw new Error(`GET /api/v1/ice/servers: ${response.status}`)
        await response.json()
      }))
    }

    const libp2pMs: number[] = []
    for (let i = 0; i < requests; i++) libp2pMs.push(await timed(endpoint))

    const pid = gateway.turn?.pid
    if (pid == null) throw new Error('coturn is not running')
    const killedAt = performance.now()
    process.kill(pid, 'SIGKILL')
    for (;;) {
      try {
        await probeTurnAllocation(credential, { rtoMs: 50, retransmissions: 0 })
        break
      } catch {
        // not back yet
      }
    }
    const recoveryMs = performance.now() - killedAt

    const result = {
      bench: 'turn',
      requests,
      coturnStartMs: summary(startMs).median,
      allocateMs: summary(allocateMs),
      probeMs: summary(probeMs),
      httpApiMs: summary(httpApiMs),
      libp2pMs: summary(libp2pMs),
      recoveryMs: Math.round(recoveryMs)
    }
    console.log([
      `coturn start to answering        median ${result.coturnStartMs} ms (${starts} starts)`,
      `TURN Allocate (401 + Allocate)   median ${result.allocateMs.median} ms, p95 ${result.allocateMs.p95} ms (${requests})`,
      `  + Refresh 0 (health check)     median ${result.probeMs.median} ms, p95 ${result.probeMs.p95} ms`,
      `GET /api/v1/ice/servers          median ${result.httpApiMs.median} ms, p95 ${result.httpApiMs.p95} ms`,
      `/natmesh/ice-servers/1.0.0       median ${result.libp2pMs.median} ms, p95 ${result.libp2pMs.p95} ms`,
      `coturn killed -> allocating      ${result.recoveryMs} ms (restart delay 1000 ms)`
    ].join('\n'))
    console.log(JSON.stringify(result))
  } finally {
    await client.stop()
    await gateway.stop()
  }
} finally {
  await rm(dir, { recursive: true, force: true })
}
