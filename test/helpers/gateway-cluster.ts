/**
 * Many gateways and peers in this process on 127.0.0.1, each with its own real sockets: the station DHT's
 * integration test and bench/lookup.ts use it. Gateway 0 is the bootstrap of every other gateway (one address
 * each, as a real deployment would be told); the rest they find through the DHT.
 *
 * Imports the compiled project from dist/ (run `tsc -p tsconfig.json` first).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Registry } from 'prom-client'
import { loadGatewayConfig, loadPeerConfig } from '../../dist/config/index.js'
import type { PeerFlags } from '../../dist/config/index.js'
import { createGateway } from '../../dist/gateway/gateway.js'
import type { Gateway } from '../../dist/gateway/gateway.js'
import { loadOrCreateIdentity } from '../../dist/core/identity.js'
import { createLogger } from '../../dist/core/logging.js'
import { createPeer } from '../../dist/peer/peer.js'
import type { NatmeshPeer } from '../../dist/peer/peer.js'
import type { PeerEvent } from '../../dist/peer/events.js'

export class GatewayCluster {
  readonly gateways: Gateway[] = []
  readonly peers: NatmeshPeer[] = []
  readonly events = new Map<NatmeshPeer, PeerEvent[]>()
  private dir = ''

  /** Starts `count` gateways; all but the first bootstrap from the first. */
  async start (count: number): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'natmesh-cluster-'))
    for (let i = 0; i < count; i++) this.gateways.push(await this.startGateway(i, i === 0 ? [] : [this.tcpAddr(0)]))
  }

  /** the gateway's TCP address: loopback UDP overlay and TCP are equally good here, TCP is cheaper to keep */
  tcpAddr (i: number): string {
    const gateway = this.gateways[i]
    const address = gateway?.node.getMultiaddrs().map(String).find(a => a.includes('/tcp/'))
    if (address == null) throw new Error(`gateway ${i} has no TCP address`)
    return address
  }

  addrs (i: number): string[] {
    return this.gateways[i]?.node.getMultiaddrs().map(String) ?? []
  }

  async startPeer (name: string, flags: PeerFlags = {}): Promise<NatmeshPeer> {
    const config = await loadPeerConfig({
      env: {},
      // NAT detection would ask STUN at the default ports, which these gateways do not use; there is no NAT here
      flags: { gateways: this.addrs(0), host: '127.0.0.1', allowPrivateAddresses: true, natDetection: false, identityFile: join(this.dir, `${name}.key`), ...flags }
    })
    const identity = await loadOrCreateIdentity(config.identityFile)
    const peer = await createPeer(config, { privateKey: identity.privateKey })
    const events: PeerEvent[] = []
    this.events.set(peer, events)
    peer.addEventListener('event', (evt) => { events.push(evt.detail) })
    this.peers.push(peer)
    await peer.start()
    return peer
  }

  eventsOf<Name extends PeerEvent['event']> (peer: NatmeshPeer, name: Name): Array<Extract<PeerEvent, { event: Name }>> {
    return (this.events.get(peer) ?? []).filter((e): e is Extract<PeerEvent, { event: Name }> => e.event === name)
  }

  async stopGateway (i: number): Promise<void> {
    await this.gateways[i]?.stop()
  }

  async stop (): Promise<void> {
    await Promise.all(this.peers.splice(0).map(async peer => { await peer.stop() }))
    await Promise.all(this.gateways.splice(0).map(async gateway => { await gateway.stop().catch(() => {}) }))
    if (this.dir !== '') await rm(this.dir, { recursive: true, force: true })
  }

  private async startGateway (i: number, bootstrap: string[]): Promise<Gateway> {
    const config = await loadGatewayConfig({
      env: {},
      // many gateways share the host: their STUN servers take ephemeral ports
      flags: { host: '127.0.0.1', udpPort: 0, tcpPort: 0, api: '127.0.0.1:0', stunPort: 0, stunOtherPort: 0, identityFile: join(this.dir, `gw${i}.key`), bootstrap }
    })
    const identity = await loadOrCreateIdentity(config.identityFile)
    const gateway = await createGateway(config, { privateKey: identity.privateKey, logger: createLogger({ level: 'silent' }), registry: new Registry() })
    await gateway.start()
    return gateway
  }
}
