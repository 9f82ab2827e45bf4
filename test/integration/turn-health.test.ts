import { createSocket } from 'node:dgram'
import type { RemoteInfo } from 'node:dgram'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { defaultLogger } from '@libp2p/logger'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { turnConfigSchema } from '../../src/config/turn.js'
import { TurnService } from '../../src/turn/coturn/turn-service.js'
import type { IceServer } from '../../src/ice-servers/types.js'
import { createLogger } from '../../src/core/logging.js'
import { TurnHealthMonitor } from '../../src/turn/client/health-monitor.js'
import { freeUdpTcpPort } from '../helpers/free-port.js'
import { waitFor } from '../helpers/wait-for.js'

const IDENTITY = '12D3KooWGsBbWvM9uYU8Yj8w6M12KxSt7SgymfCDikk7BE3bVBZ3'

describe('TURN health monitor (two real coturns on 127.0.0.1)', () => {
  let dir: string
  const services: TurnService[] = []

  async function startCoturn (name: string, relayPorts: { min: number, max: number }): Promise<TurnService> {
    const config = turnConfigSchema.parse({
      enabled: true,
      required: true,
      port: await freeUdpTcpPort(),
      stateDir: join(dir, name),
      secretFile: join(dir, `${name}.secret`),
      relayPortRange: relayPorts
    })
    const service = new TurnService({ config, gatewayHost: '127.0.0.1', announce: [], logger: createLogger({ level: 'silent' }) })
    await service.start()
    services.push(service)
    return service
  }

  function iceServer (service: TurnService): IceServer {
    const { username, credential } = service.credentialFor(IDENTITY)
    return { urls: service.urls, username, credential }
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'natmesh-turn-health-'))
  })

  afterAll(async () => {
    await Promise.all(services.map(async service => { await service.stop() }))
    await rm(dir, { recursive: true, force: true })
  })

  it('marks a dead server unhealthy after 3 failed allocations, prefers the healthy one, and takes the dead one back once it answers', async () => {
    const failing = await startCoturn('failing', { min: 50300, max: 50349 })
    const steady = await startCoturn('steady', { min: 50350, max: 50399 })
    // the failing server is listed first: only the monitor's ordering can put the steady one ahead of it
    const servers = [{ urls: ['stun:127.0.0.1:3478'] }, iceServer(failing), iceServer(steady)]
    const [failingAddress, steadyAddress] = [failing, steady].map(service => service.urls[0]?.replace(/^turn:|\?.*$/g, ''))

    const monitor = new TurnHealthMonitor({
      servers: () => servers,
      log: defaultLogger().forComponent('test:turn-health'),
      intervalMs: 100,
      failureThreshold: 3,
      unhealthyForMs: 1500,
      // a dead server on loopback costs 50 + 100 ms per check
      rtoMs: 50,
      retransmissions: 1
    })
    await monitor.start()

    try {
      await waitFor(() => monitor.health().filter(state => state.healthy && state.latencyMs != null).length === 2, 5000, 'both servers to pass a check')
      await failing.stop()

      const unhealthy = await waitFor(() => monitor.health().find(state => state.address === failingAddress && !state.healthy), 5000, 'the stopped server to be marked unhealthy')
      expect(unhealthy.consecutiveFailures).toBe(3)
      expect(unhealthy.lastError).toMatch(/no STUN response/)
      expect(monitor.health().find(state => state.address === steadyAddress)).toMatchObject({ healthy: true, consecutiveFailures: 0 })
      expect(monitor.ordered()).toEqual([servers[0], servers[2], servers[1]])

      // benched servers are not checked: the failure count stays put while it is unhealthy
      await new Promise(resolve => setTimeout(resolve, 500))
      expect(monitor.health().find(state => state.address === failingAddress)?.consecutiveFailures).toBe(3)

      await failing.start()
      await waitFor(() => monitor.health().find(state => state.address === failingAddress && state.healthy), 10_000, 'the restarted server to be healthy again')
    } finally {
      await monitor.stop()
    }
  })

  it('prefers the healthy server with the lowest allocation latency', async () => {
    const service = await startCoturn('latency', { min: 50400, max: 50449 })
    const port = Number(/:(\d+)\?/.exec(service.urls[0] ?? '')?.[1])
    // the same coturn twice: directly, and behind a UDP forwarder that holds every datagram 100 ms each way, so
    // an allocation (two round trips) through it takes 400 ms longer; loopback jitter is nowhere near that
    const slowPath = await delayingForwarder({ host: '127.0.0.1', port }, 100)
    const { username, credential } = service.credentialFor(IDENTITY)
    const fast: IceServer = { urls: [`turn:127.0.0.1:${port}?transport=udp`], username, credential }
    const slow: IceServer = { urls: [`turn:127.0.0.1:${slowPath.port}?transport=udp`], username, credential }
    const monitor = new TurnHealthMonitor({ servers: () => [slow, fast], log: defaultLogger().forComponent('test:turn-health'), rtoMs: 1000 })

    try {
      await monitor.checkNow()
      const latency = new Map(monitor.health().map(state => [state.address, state.latencyMs]))
      expect(latency.get(`127.0.0.1:${slowPath.port}`)).toBeGreaterThan(latency.get(`127.0.0.1:${port}`) ?? Infinity)
      expect(monitor.ordered()).toEqual([fast, slow])
    } finally {
      slowPath.close()
    }
  })
})

/** A UDP forwarder to `target` that delays each datagram by `delayMs` in both directions (one client at a time) */
async function delayingForwarder (target: { host: string, port: number }, delayMs: number): Promise<{ port: number, close: () => void }> {
  const front = createSocket('udp4')
  const back = createSocket('udp4')
  let client: RemoteInfo | undefined
  front.on('message', (message, from) => {
    client = from
    setTimeout(() => { back.send(message, target.port, target.host) }, delayMs)
  })
  back.on('message', (message) => {
    const to = client
    if (to != null) setTimeout(() => { front.send(message, to.port, to.address) }, delayMs)
  })
  await new Promise<void>(resolve => { front.bind(0, '127.0.0.1', resolve) })
  return { port: front.address().port, close: () => { front.close(); back.close() } }
}
