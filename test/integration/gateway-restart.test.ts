import { afterEach, describe, expect, it } from 'vitest'
import type { PeerFlags } from '../../src/config/index.js'
import { LoopbackMesh } from '../helpers/loopback-mesh.js'
import { waitFor } from '../helpers/wait-for.js'

describe('gateway restart', () => {
  let mesh: LoopbackMesh
  afterEach(async () => { await mesh.stop() })

  it('peers notice the gateway going away, reconnect when it is back on the same ports, and relay again', async () => {
    mesh = new LoopbackMesh()
    const first = await mesh.startGateway()
    const gatewayId = first.node.peerId.toString()
    const ports = mesh.gatewayPorts()
    expect(ports.udp).toBeGreaterThan(0)
    expect(ports.tcp).toBeGreaterThan(0)

    const peerFlags: PeerFlags = { mode: 'relay-only', reconnectInitialDelayMs: 100, reconnectMaxDelayMs: 1000, gatewayDialTimeoutMs: 1000 }
    const a = await mesh.startPeer(peerFlags)
    const b = await mesh.startPeer(peerFlags)
    for (const peer of [a, b]) {
      expect(mesh.eventsOf(peer, 'reservation')).toHaveLength(1)
      expect(mesh.eventsOf(peer, 'gateway-lost')).toHaveLength(0)
    }

    // the relay works before the restart
    const before = await a.connect(b.peerId.toString())
    expect((await a.ping(b.peerId, before)).path).toBe('relay')

    // --- the gateway goes away
    await mesh.stopGateway()
    for (const peer of [a, b]) {
      const lost = await mesh.nextEvent(peer, 'gateway-lost', 0, 5000)
      expect(lost.gateway).toBe(gatewayId)
      expect(lost.reason).toMatch(/^connection closed/)
      expect(lost.retryInMs).toBeGreaterThanOrEqual(50)
      expect(lost.retryInMs).toBeLessThanOrEqual(1000)
      // no gateway, no relay address to hand out
      expect(peer.relayAddresses()).toEqual([])
    }
    // the relayed connection went down with the gateway
    await waitFor(() => before.status !== 'open', 5000, 'the relayed connection to close')

    // while the gateway is down, reconnection attempts fail, and say so
    for (const peer of [a, b]) {
      const failed = await mesh.nextEvent(peer, 'gateway-lost', 1, 10_000)
      expect(failed.gateway).toBe(gatewayId)
      expect(failed.reason).toMatch(/could not reach gateway/)
      expect(failed.retryInMs).toBeLessThanOrEqual(1000)
      expect(mesh.eventsOf(peer, 'reservation')).toHaveLength(1)
    }

    // --- the gateway comes back: new Gateway objects, same identity, same ports
    const second = await mesh.restartGateway(ports)
    expect(second).not.toBe(first)
    expect(second.node.peerId.toString()).toBe(gatewayId)
    expect(mesh.gatewayPorts()).toEqual(ports)

    for (const peer of [a, b]) {
      const reservation = await mesh.nextEvent(peer, 'reservation', 1, 10_000)
      expect(reservation.gateway).toBe(gatewayId)
      expect(reservation.relayAddrs.length).toBeGreaterThan(0)
      for (const addr of reservation.relayAddrs) expect(addr).toContain(`/p2p/${gatewayId}/p2p-circuit/p2p/${peer.peerId.toString()}`)
      expect(peer.relayAddresses().map(String)).toEqual(reservation.relayAddrs)
      const connected = mesh.eventsOf(peer, 'gateway-connected')
      expect(connected.length).toBeGreaterThanOrEqual(2)
    }
    // the new gateway process holds both reservations
    await waitFor(() => second.node.services.relay.reservations.size === 2, 5000, 'the restarted gateway to hold two reservations')

    // and A reaches B through it again
    const after = await a.connect(b.peerId.toString())
    expect(after.id).not.toBe(before.id)
    expect(after.remoteAddr.toString()).toContain(`/p2p/${gatewayId}/p2p-circuit`)
    expect((await a.ping(b.peerId, after)).path).toBe('relay')
    expect((await b.ping(a.peerId)).path).toBe('relay')
  })
})
