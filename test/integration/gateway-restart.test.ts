import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Multiaddr } from '@multiformats/multiaddr'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { loadGatewayConfig, loadPeerConfig } from '../../src/config/index.js'
import type { GatewayFlags, PeerFlags } from '../../src/config/index.js'
import { createGateway } from '../../src/gateway/gateway.js'
import type { Gateway } from '../../src/gateway/gateway.js'
import { loadOrCreateIdentity } from '../../src/identity.js'
import { createLogger } from '../../src/logging.js'
import type { PeerEvent } from '../../src/peer/events.js'
import { createPeer } from '../../src/peer/peer.js'
import type { NatmeshPeer } from '../../src/peer/peer.js'
import { toUdpEndpoint } from '../../src/transport/index.js'
import { waitFor } from '../helpers/wait-for.js'

/**
 * Like LoopbackMesh, but the gateway can be stopped and started again as the same node: same identity file
 * (so the same peer id) and the same UDP and TCP ports, which is what a restarted gateway process looks like.
 */
class RestartableMesh {
  gateway?: Gateway
  readonly peers: NatmeshPeer[] = []
  readonly events = new Map<NatmeshPeer, PeerEvent[]>()
  private dir = ''
  private gatewayFlags: GatewayFlags = {}

  async init (): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'natmesh-restart-'))
  }

  async startGateway (flags: GatewayFlags = {}): Promise<Gateway> {
    this.gatewayFlags = { host: '127.0.0.1', udpPort: 0, tcpPort: 0, api: '127.0.0.1:0', identityFile: join(this.dir, 'gw.key'), ...flags }
    const config = await loadGatewayConfig({ env: {}, flags: this.gatewayFlags })
    const identity = await loadOrCreateIdentity(config.identityFile)
    const gateway = await createGateway(config, { privateKey: identity.privateKey, logger: createLogger({ level: 'silent' }), registry: new Registry() })
    await gateway.start()
    this.gateway = gateway
    return gateway
  }

  /** ports the running gateway actually bound (it was started on port 0) */
  gatewayPorts (): { udp: number, tcp: number } {
    const addrs = this.gateway!.node.getMultiaddrs()
    const udp = addrs.map(ma => toUdpEndpoint(ma)?.port).find(port => port != null)
    const tcp = addrs.map(tcpPort).find(port => port != null)
    if (udp == null || tcp == null) throw new Error(`gateway has no UDP overlay or TCP address: ${addrs.map(String).join(', ')}`)
    return { udp, tcp }
  }

  async stopGateway (): Promise<void> {
    await this.gateway?.stop()
    this.gateway = undefined
  }

  /** A new Gateway object on the same identity file and on the given ports. */
  async restartGateway (ports: { udp: number, tcp: number }): Promise<Gateway> {
    return this.startGateway({ ...this.gatewayFlags, udpPort: ports.udp, tcpPort: ports.tcp })
  }

  async startPeer (gateways: string[], flags: PeerFlags = {}): Promise<NatmeshPeer> {
    const name = `peer-${this.peers.length}`
    const config = await loadPeerConfig({ env: {}, flags: { gateways, host: '127.0.0.1', allowPrivateAddresses: true, identityFile: join(this.dir, `${name}.key`), ...flags } })
    const identity = await loadOrCreateIdentity(config.identityFile)
    const peer = await createPeer(config, { privateKey: identity.privateKey })
    const events: PeerEvent[] = []
    this.events.set(peer, events)
    peer.addEventListener('event', (evt) => { events.push(evt.detail) })
    this.peers.push(peer)
    await peer.start()
    await waitFor(() => peer.relayAddresses().length > 0, 10_000, `${name} to hold a reservation`)
    return peer
  }

  eventsOf<Name extends PeerEvent['event']> (peer: NatmeshPeer, name: Name): Array<Extract<PeerEvent, { event: Name }>> {
    return (this.events.get(peer) ?? []).filter((e): e is Extract<PeerEvent, { event: Name }> => e.event === name)
  }

  async stop (): Promise<void> {
    for (const peer of this.peers.splice(0)) await peer.stop()
    await this.stopGateway()
    if (this.dir !== '') await rm(this.dir, { recursive: true, force: true })
  }
}

function tcpPort (ma: Multiaddr): number | undefined {
  const [ip, tcp] = ma.getComponents()
  if ((ip?.name !== 'ip4' && ip?.name !== 'ip6') || tcp?.name !== 'tcp' || tcp.value == null) return undefined
  return Number(tcp.value)
}

describe('gateway restart', () => {
  let mesh: RestartableMesh
  afterEach(async () => { await mesh.stop() })

  it('peers notice the gateway going away, reconnect when it is back on the same ports, and relay again', async () => {
    mesh = new RestartableMesh()
    await mesh.init()
    const first = await mesh.startGateway()
    const gatewayId = first.node.peerId.toString()
    const ports = mesh.gatewayPorts()
    expect(ports.udp).toBeGreaterThan(0)
    expect(ports.tcp).toBeGreaterThan(0)
    const gatewayAddrs = first.node.getMultiaddrs().map(String)

    const peerFlags: PeerFlags = { mode: 'relay-only', reconnectInitialDelayMs: 100, reconnectMaxDelayMs: 1000, gatewayDialTimeoutMs: 1000 }
    const a = await mesh.startPeer(gatewayAddrs, peerFlags)
    const b = await mesh.startPeer(gatewayAddrs, peerFlags)
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
      const lost = await waitFor(() => mesh.eventsOf(peer, 'gateway-lost')[0], 5000, 'a gateway-lost event')
      expect(lost.gateway).toBe(gatewayId)
      expect(lost.reason).toBe('connection closed')
      expect(lost.retryInMs).toBeGreaterThanOrEqual(50)
      expect(lost.retryInMs).toBeLessThanOrEqual(1000)
      // no gateway, no relay address to hand out
      expect(peer.relayAddresses()).toEqual([])
    }
    // the relayed connection went down with the gateway
    await waitFor(() => before.status !== 'open', 5000, 'the relayed connection to close')

    // while the gateway is down, reconnection attempts fail, and say so
    for (const peer of [a, b]) {
      const failed = await waitFor(() => mesh.eventsOf(peer, 'gateway-lost')[1], 10_000, 'a failed reconnection attempt')
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
      const reservation = await waitFor(() => mesh.eventsOf(peer, 'reservation')[1], 10_000, 'a new reservation after the restart')
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
