import { afterEach, describe, expect, it } from 'vitest'
import { createLogger } from '../../src/core/logging.js'
import { startStatusApi } from '../../src/peer/status-api.js'
import { LoopbackMesh } from '../helpers/loopback-mesh.js'
import { waitFor } from '../helpers/wait-for.js'

describe('gateway and peers on loopback', () => {
  let mesh: LoopbackMesh
  afterEach(async () => { await mesh.stop() })

  it('relays, hole punches to a direct path, and the gateway sees and counts it all', async () => {
    mesh = new LoopbackMesh()
    const gateway = await mesh.startGateway()
    const a = await mesh.startPeer()
    const b = await mesh.startPeer()

    const relayed = await a.connect(b.peerId.toString())
    expect(relayed.remoteAddr.toString()).toContain('/p2p-circuit')
    expect((await a.ping(b.peerId, relayed)).path).toBe('relay')

    const direct = await a.waitForDirect(b.peerId, 10_000)
    expect(direct?.remoteAddr.toString()).toMatch(/^\/ip4\/127\.0\.0\.1\/udp\/\d+\/udx/)
    expect((await a.ping(b.peerId)).path).toBe('direct')
    // the relayed connection stays open as the fallback path
    expect(relayed.status).toBe('open')
    const stats = a.stats().find(s => s.peer === b.peerId.toString())
    expect(stats?.path).toBe('direct')
    expect(stats?.directAfterMs).toBeGreaterThanOrEqual(0)

    const status = await startStatusApi(a, { host: '127.0.0.1', port: 0, logger: createLogger({ level: 'silent' }) })
    try {
      const connections = await (await fetch(`${status.url}/api/v1/connections`)).json() as Array<{ peer: string, path: string, rttMs: number, directAfterMs: number }>
      const toB = connections.find(c => c.peer === b.peerId.toString())
      expect(toB?.path).toBe('direct')
      expect(toB?.rttMs).toBeGreaterThan(0)
      const overview = await (await fetch(`${status.url}/api/v1/status`)).json() as { relayAddresses: string[], gateways: Array<{ gateway: string, transport: string }> }
      expect(overview.relayAddresses[0]).toContain('/p2p-circuit/p2p/')
      expect(overview.gateways).toEqual([expect.objectContaining({ gateway: gateway.node.peerId.toString(), transport: 'udx' })])
      expect((await fetch(`${status.url}/api/v1/nope`)).status).toBe(404)
    } finally {
      await status.close()
    }

    const api = gateway.apiUrl!
    const peers = await (await fetch(`${api}/api/v1/peers`)).json() as Array<{ peerId: string, addresses: Array<{ transport: string }> }>
    for (const peer of [a, b]) {
      const entry = peers.find(p => p.peerId === peer.peerId.toString())
      expect(entry?.addresses.map(x => x.transport)).toContain('udx')
    }
    const metrics = await waitFor(async () => {
      const text = await (await fetch(`${api}/metrics`)).text()
      return /natmesh_hole_punch_outcomes_total\{outcome="success",transport="udx"\} [1-9]/.test(text) ? text : undefined
    }, 5000, 'the hole-punch report to reach the gateway metrics')
    expect(metrics).toMatch(/natmesh_relay_reservations 2/)
    const relayedBytes = Number(/natmesh_relayed_bytes_total (\d+)/.exec(metrics)?.[1])
    expect(relayedBytes).toBeGreaterThan(0)
  })

  it('reports why a punch did not happen, by code, in the status API', async () => {
    mesh = new LoopbackMesh()
    await mesh.startGateway()
    // over TCP only, no gateway observes a UDP overlay address of either peer: there is nothing to punch
    const gateways = mesh.gatewayAddrs().filter(addr => addr.includes('/tcp/'))
    const a = await mesh.startPeer({ gateways })
    const b = await mesh.startPeer({ gateways })
    await a.connect(b.peerId.toString())
    // B received the relayed connection: it runs the DCUtR exchange and reports its outcome
    await waitFor(() => mesh.eventsOf(b, 'hole-punch')[0], 10_000, 'B\'s hole-punch outcome')

    const status = await startStatusApi(b, { host: '127.0.0.1', port: 0, logger: createLogger({ level: 'silent' }) })
    try {
      const connections = await (await fetch(`${status.url}/api/v1/connections`)).json() as Array<{ peer: string, lastHolePunch?: unknown }>
      expect(connections.find(c => c.peer === a.peerId.toString())?.lastHolePunch).toMatchObject({ outcome: 'skipped', code: 'NO_UDP_PATH', reason: expect.stringMatching(/no UDP path/) })
    } finally {
      await status.close()
    }
  })

  it('keeps relay-only peers on the relay', async () => {
    mesh = new LoopbackMesh()
    await mesh.startGateway()
    const a = await mesh.startPeer({ mode: 'relay-only' })
    const b = await mesh.startPeer({ mode: 'relay-only' })
    const relayed = await a.connect(b.peerId.toString())
    expect((await a.ping(b.peerId, relayed)).path).toBe('relay')
    expect(await a.waitForDirect(b.peerId, 1500)).toBeUndefined()
    expect(mesh.events.get(b)?.some(e => e.event === 'hole-punch')).toBe(false)
  })
})
