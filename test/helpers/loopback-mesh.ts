import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { loadGatewayConfig, loadPeerConfig } from '../../src/config/index.js'
import type { PeerFlags } from '../../src/config/index.js'
import { createGateway } from '../../src/gateway/gateway.js'
import type { Gateway } from '../../src/gateway/gateway.js'
import { loadOrCreateIdentity } from '../../src/identity.js'
import { createLogger } from '../../src/logging.js'
import { createPeer } from '../../src/peer/peer.js'
import type { NatmeshPeer } from '../../src/peer/peer.js'
import type { PeerEvent } from '../../src/peer/events.js'
import { waitFor } from './wait-for.js'

/** A gateway and peers in this process on 127.0.0.1, each with its own real sockets. */
export class LoopbackMesh {
  gateway!: Gateway
  readonly peers: NatmeshPeer[] = []
  readonly events = new Map<NatmeshPeer, PeerEvent[]>()
  private dir = ''

  async startGateway (flags: Record<string, unknown> = {}): Promise<Gateway> {
    this.dir = await mkdtemp(join(tmpdir(), 'natmesh-test-'))
    const config = await loadGatewayConfig({ env: {}, flags: { host: '127.0.0.1', udpPort: 0, tcpPort: 0, api: '127.0.0.1:0', identityFile: join(this.dir, 'gw.key'), ...flags } })
    const identity = await loadOrCreateIdentity(config.identityFile)
    this.gateway = await createGateway(config, { privateKey: identity.privateKey, logger: createLogger({ level: 'silent' }), registry: new Registry() })
    await this.gateway.start()
    return this.gateway
  }

  gatewayAddrs (): string[] {
    return this.gateway.node.getMultiaddrs().map(String)
  }

  async startPeer (flags: PeerFlags = {}): Promise<NatmeshPeer> {
    const name = `peer-${this.peers.length}`
    const config = await loadPeerConfig({ env: {}, flags: { gateways: this.gatewayAddrs(), host: '127.0.0.1', allowPrivateAddresses: true, identityFile: join(this.dir, `${name}.key`), ...flags } })
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

  async stop (): Promise<void> {
    for (const peer of this.peers.splice(0)) await peer.stop()
    await this.gateway?.stop()
    if (this.dir !== '') await rm(this.dir, { recursive: true, force: true })
  }
}
