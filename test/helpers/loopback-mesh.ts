import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { loadGatewayConfig, loadPeerConfig } from '../../src/config/index.js'
import type { GatewayFlags, PeerFlags } from '../../src/config/index.js'
import { createGateway } from '../../src/gateway/gateway.js'
import type { Gateway } from '../../src/gateway/gateway.js'
import { loadOrCreateIdentity } from '../../src/core/identity.js'
import { createLogger } from '../../src/core/logging.js'
import { createPeer } from '../../src/peer/peer.js'
import type { NatmeshPeer } from '../../src/peer/peer.js'
import type { PeerEvent } from '../../src/peer/events.js'
import { toUdpEndpoint } from '../../src/transport/index.js'
import { untilEvent } from './wait-for.js'

/**
 * A gateway and peers in this process on 127.0.0.1, each with its own real sockets. The gateway can be stopped
 * and started again as the same node (same identity file, same ports), like a restarted gateway process.
 */
export class LoopbackMesh {
  private current?: Gateway
  readonly peers: NatmeshPeer[] = []
  readonly events = new Map<NatmeshPeer, PeerEvent[]>()
  private dir?: string
  private gatewayFlags: GatewayFlags = {}

  get gateway (): Gateway {
    if (this.current == null) throw new Error('the gateway is not running')
    return this.current
  }

  /** `file`: a YAML config under the flags, for settings that have no flag (TURN's state directory) */
  async startGateway (flags: GatewayFlags = {}, file?: string): Promise<Gateway> {
    this.dir ??= await mkdtemp(join(tmpdir(), 'natmesh-test-'))
    this.gatewayFlags = { host: '127.0.0.1', udpPort: 0, tcpPort: 0, api: '127.0.0.1:0', stunPort: 0, stunOtherPort: 0, identityFile: join(this.dir, 'gw.key'), ...flags }
    const config = await loadGatewayConfig({ file, env: {}, flags: this.gatewayFlags })
    const identity = await loadOrCreateIdentity(config.identityFile)
    const gateway = await createGateway(config, { privateKey: identity.privateKey, logger: createLogger({ level: 'silent' }), registry: new Registry() })
    await gateway.start()
    this.current = gateway
    return gateway
  }

  async stopGateway (): Promise<void> {
    await this.current?.stop()
    this.current = undefined
  }

  /** A new Gateway object with the same identity and settings, on the ports the previous one had bound. */
  async restartGateway (ports: { udp: number, tcp: number }): Promise<Gateway> {
    return this.startGateway({ ...this.gatewayFlags, udpPort: ports.udp, tcpPort: ports.tcp })
  }

  /** ports the running gateway actually bound (it was started on port 0) */
  gatewayPorts (): { udp: number, tcp: number } {
    const addrs = this.gateway.node.getMultiaddrs()
    const udp = addrs.map(ma => toUdpEndpoint(ma)?.port).find(port => port != null)
    const tcp = addrs.map(ma => ma.getComponents()).find(([ip, port]) => (ip?.name === 'ip4' || ip?.name === 'ip6') && port?.name === 'tcp')?.[1]?.value
    if (udp == null || tcp == null) throw new Error(`gateway has no UDP overlay or TCP address: ${addrs.map(String).join(', ')}`)
    return { udp, tcp: Number(tcp) }
  }

  gatewayAddrs (): string[] {
    return this.gateway.node.getMultiaddrs().map(String)
  }

  async startPeer (flags: PeerFlags = {}): Promise<NatmeshPeer> {
    const name = `peer-${this.peers.length}`
    const config = await loadPeerConfig({ env: {}, flags: { gateways: this.gatewayAddrs(), host: '127.0.0.1', allowPrivateAddresses: true, identityFile: join(this.dir ?? tmpdir(), `${name}.key`), ...flags } })
    const identity = await loadOrCreateIdentity(config.identityFile)
    const peer = await createPeer(config, { privateKey: identity.privateKey })
    const events: PeerEvent[] = []
    this.events.set(peer, events)
    peer.addEventListener('event', (evt) => { events.push(evt.detail) })
    this.peers.push(peer)
    await peer.start()
    await untilEvent(peer, 'event', () => peer.relayAddresses().length > 0, 10_000, `${name} to hold a reservation`)
    return peer
  }

  /** the peer's `index`th (0-based) `name` event since it started, once it has emitted it */
  async nextEvent<Name extends PeerEvent['event']> (peer: NatmeshPeer, name: Name, index: number, timeoutMs: number): Promise<Extract<PeerEvent, { event: Name }>> {
    return untilEvent(peer, 'event', () => this.eventsOf(peer, name)[index], timeoutMs, `${name} event #${index + 1}`)
  }

  eventsOf<Name extends PeerEvent['event']> (peer: NatmeshPeer, name: Name): Array<Extract<PeerEvent, { event: Name }>> {
    return (this.events.get(peer) ?? []).filter((e): e is Extract<PeerEvent, { event: Name }> => e.event === name)
  }

  async stop (): Promise<void> {
    for (const peer of this.peers.splice(0)) await peer.stop()
    await this.stopGateway()
    if (this.dir != null) await rm(this.dir, { recursive: true, force: true })
  }
}
