import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { Registry } from 'prom-client'
import type { Libp2p } from '@libp2p/interface'
import { loadGatewayConfig, loadPeerConfig } from '../../dist/config/index.js'
import { createGateway } from '../../dist/gateway/gateway.js'
import type { Gateway } from '../../dist/gateway/gateway.js'
import { loadOrCreateIdentity } from '../../dist/core/identity.js'
import { createLogger } from '../../dist/core/logging.js'
import { createPeer } from '../../dist/peer/peer.js'
import type { NatmeshPeer } from '../../dist/peer/peer.js'
import { untilEvent } from '../../test/helpers/wait-for.ts'

export interface BenchMesh {
  gateway: Gateway
  a: NatmeshPeer
  b: NatmeshPeer
  stop: () => Promise<void>
}

/**
 * A gateway and two peers in this process on 127.0.0.1. The peer identities are created first so the gateway
 * can allowlist both: their circuits then carry no data or duration limit and the relayed path survives a
 * 64 MiB transfer (the default circuit limit is 128 KiB). The peers only get the gateway's UDP overlay address,
 * so the relayed path is udx end to end.
 */
export async function startMesh (options: { allowlist?: boolean } = {}): Promise<BenchMesh> {
  const dir = await mkdtemp(join(tmpdir(), 'natmesh-bench-'))
  const started: Array<{ stop: () => Promise<void> }> = []
  const stop = async (): Promise<void> => {
    for (const node of started.splice(0).reverse()) {
      try { await node.stop() } catch (err) { console.error('stopping a node failed:', err) }
    }
    await rm(dir, { recursive: true, force: true })
  }
  try {
    const ids = await Promise.all(['peer-a', 'peer-b'].map(async name => loadOrCreateIdentity(join(dir, `${name}.key`))))
    const gatewayConfig = await loadGatewayConfig({
      env: {},
      flags: {
        host: '127.0.0.1',
        udpPort: 0,
        tcpPort: 0,
        api: '127.0.0.1:0',
        identityFile: join(dir, 'gateway.key'),
        allowlist: options.allowlist === false ? [] : ids.map(id => id.peerId.toString()),
        logLevel: 'silent'
      }
    })
    const gatewayIdentity = await loadOrCreateIdentity(gatewayConfig.identityFile)
    const gateway = await createGateway(gatewayConfig, { privateKey: gatewayIdentity.privateKey, logger: createLogger({ level: 'silent' }), registry: new Registry() })
    await gateway.start()
    started.push(gateway)

    const udxAddrs = gateway.node.getMultiaddrs().map(String).filter(ma => ma.includes('/udx'))
    if (udxAddrs.length === 0) throw new Error(`the gateway has no UDP overlay address (${gateway.node.getMultiaddrs().join(', ')})`)
    const peers: NatmeshPeer[] = []
    for (const name of ['peer-a', 'peer-b']) {
      const config = await loadPeerConfig({
        env: {},
        flags: { gateways: udxAddrs, host: '127.0.0.1', allowPrivateAddresses: true, identityFile: join(dir, `${name}.key`), logLevel: 'silent' }
      })
      const identity = await loadOrCreateIdentity(config.identityFile)
      const peer = await createPeer(config, { privateKey: identity.privateKey })
      await peer.start()
      started.push(peer)
      await untilEvent(peer, 'event', () => peer.relayAddresses().length > 0, 10_000, `${name} to hold a reservation on the gateway`)
      peers.push(peer)
    }
    return { gateway, a: peers[0]!, b: peers[1]!, stop }
  } catch (err) {
    await stop()
    throw err
  }
}

export interface TcpPair {
  a: Libp2p
  b: Libp2p
  stop: () => Promise<void>
}

/** Two stock libp2p nodes, TCP + noise + yamux on 127.0.0.1: the reference path. */
export async function startTcpPair (): Promise<TcpPair> {
  const make = async (): Promise<Libp2p> => createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false }
  })
  const a = await make()
  const b = await make()
  return { a, b, stop: async () => { await a.stop(); await b.stop() } }
}
