/**
 * NAT detection over real loopback sockets (no NAT in the way: the NAT flavours are the lab's job), the cached
 * detector, and a gateway + peer pair: the gateway's STUN server, the peer's nat-type event, status API and metrics.
 */
import { createSocket } from 'node:dgram'
import { afterAll, afterEach, describe, expect, it } from 'vitest'
import type { StunServerInit } from '../../src/stun/server.js'
import { StunServer } from '../../src/stun/server.js'
import { createLogger } from '../../src/core/logging.js'
import { detectNat } from '../../src/nat/detect.js'
import { NatDetector } from '../../src/nat/nat-detector.js'
import type { NatReport, StunServerAddress } from '../../src/nat/types.js'
import { startStatusApi } from '../../src/peer/status-api.js'
import { LoopbackMesh } from '../helpers/loopback-mesh.js'
import { waitFor } from '../helpers/wait-for.js'

const servers: StunServer[] = []

async function stunServer (init: Partial<StunServerInit> = {}): Promise<StunServerAddress> {
  const server = new StunServer({ host: '127.0.0.1', port: 0, otherPort: 0, ratePerSecond: 100, burst: 200, logger: createLogger({ level: 'silent' }), ...init })
  servers.push(server)
  await server.start()
  const [primary] = server.addresses()
  return { host: '127.0.0.1', port: primary?.port ?? 0 }
}

/** a loopback port nothing listens on: a STUN server that does not answer */
async function silentPort (): Promise<number> {
  const socket = createSocket('udp4')
  await new Promise<void>((resolve) => { socket.bind(0, '127.0.0.1', resolve) })
  const { port } = socket.address()
  await new Promise<void>((resolve) => { socket.close(resolve) })
  return port
}

afterEach(async () => {
  for (const server of servers.splice(0)) await server.stop()
})

describe('detectNat on loopback', () => {
  it('finds no NAT, with every test run when the server has an alternate IP', async () => {
    const report = await detectNat({ servers: [await stunServer({ alternateAddress: '127.0.0.2' })], timeoutMs: 1000 })
    expect(report).toMatchObject({
      natType: 'no-nat', confidence: 0.95, mapping: 'endpoint-independent', filtering: 'endpoint-independent', portPreserved: true, allocation: 'preserving', hairpinning: true, notes: []
    })
    expect(report.publicAddress).toEqual({ address: '127.0.0.1', port: report.localAddress.port })
  })

  it('says what it could not tell without an alternate IP, and uses the test socket it is given', async () => {
    const socket = createSocket('udp4')
    await new Promise<void>((resolve) => { socket.bind(0, '127.0.0.1', resolve) })
    const report = await detectNat({ servers: [await stunServer()], socket, timeoutMs: 1000 })
    expect(report.natType).toBe('no-nat')
    expect(report.localAddress).toEqual({ address: '127.0.0.1', port: socket.address().port })
    expect(report.confidence).toBeLessThan(0.9)
    expect(report.notes.join('\n')).toMatch(/no alternate IP/)
    // the caller's socket stays open
    expect(() => socket.address()).not.toThrow()
    socket.close()
  })

  it('reports UDP blocked, with the reason, when no server answers; and falls over to a server that does', async () => {
    const silent = { host: '127.0.0.1', port: await silentPort() }
    const blocked = await detectNat({ servers: [silent], timeoutMs: 300 })
    expect(blocked).toMatchObject({ natType: 'udp-blocked', server: { address: '127.0.0.1', port: silent.port } })
    expect(blocked.notes[0]).toMatch(/no STUN answer from 127\.0\.0\.1:\d+ within 300 ms/)
    const live = await stunServer({ alternateAddress: '127.0.0.2' })
    expect((await detectNat({ servers: [silent, live], timeoutMs: 300 })).natType).toBe('no-nat')
  })
})

describe('NatDetector', () => {
  it('caches a report for cacheMs, shares one run between callers, and redetects when forced', async () => {
    const reports: NatReport[] = []
    const server = await stunServer({ alternateAddress: '127.0.0.2' })
    const detector = new NatDetector({ servers: () => [server], cacheMs: 60_000, timeoutMs: 500, onReport: (r) => { reports.push(r) } })
    detector.start()
    const [a, b] = await Promise.all([detector.detect(), detector.detect()])
    expect(a).toBe(b)
    expect(await detector.detect()).toBe(a)
    expect(reports).toHaveLength(1)
    const forced = await detector.detect({ force: true })
    expect(forced).not.toBe(a)
    expect(detector.current()).toBe(forced)
    detector.stop()
  })

  it('stops a detection under way at once', async () => {
    const detector = new NatDetector({ servers: () => [{ host: '127.0.0.1', port: 9 }], timeoutMs: 10_000 })
    detector.start()
    const started = performance.now()
    const pending = detector.detect()
    detector.stop()
    await pending
    // far below the 10 s a single unanswered test would wait
    expect(performance.now() - started).toBeLessThan(5000)
    expect(detector.current()).toBeUndefined()
  })
})

describe('a peer detects its NAT type through its gateway\'s STUN server', () => {
  const mesh = new LoopbackMesh()
  afterAll(async () => { await mesh.stop() })

  it('emits nat-type, shows it in the status API, and the gateway counts the requests', async () => {
    const gateway = await mesh.startGateway({ stunPort: 0, stunOtherPort: 0, stunAlternateAddress: '127.0.0.2' })
    const [primary, other] = gateway.stun?.addresses() ?? []
    const peer = await mesh.startPeer({ stunPorts: [String(primary?.port), String(other?.port)] })
    await waitFor(() => mesh.eventsOf(peer, 'nat-type')[0], 10_000, 'the nat-type event')
    expect(mesh.eventsOf(peer, 'nat-type')[0]).toMatchObject({ natType: 'no-nat', mapping: 'endpoint-independent', filtering: 'endpoint-independent', hairpinning: true })

    const api = await startStatusApi(peer, { host: '127.0.0.1', port: 0, logger: createLogger({ level: 'silent' }) })
    try {
      const status = await (await fetch(`${api.url}/api/v1/status`)).json() as { nat: NatReport, natMapping: unknown }
      expect(status.nat).toMatchObject({ natType: 'no-nat', publicAddress: { address: '127.0.0.1' } })
      // no NAT: a hole punch reaches this peer by a plain dial
      expect(status.natMapping).toEqual({ kind: 'open' })
    } finally {
      await api.close()
    }
    const metrics = await (await fetch(`${gateway.apiUrl ?? ''}/metrics`)).text()
    expect(metrics).toMatch(/^natmesh_stun_requests_total [1-9]\d*$/m)
    expect(metrics).toMatch(/^natmesh_stun_malformed_total 0$/m)
  })
})
