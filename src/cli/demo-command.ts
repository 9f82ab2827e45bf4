import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Command } from 'commander'
import { loadGatewayConfig, loadPeerConfig } from '../config/index.js'
import { createGateway } from '../gateway/gateway.js'
import { loadOrCreateIdentity } from '../identity.js'
import { createLogger } from '../logging.js'
import { CAT_PROTOCOL } from '../peer/cat.js'
import { createPeer } from '../peer/peer.js'
import type { NatmeshPeer } from '../peer/peer.js'
import { waitForGateway } from './peer-command.js'

const say = (who: string, what: string): void => { process.stdout.write(`${who.padEnd(8)} ${what}\n`) }

/**
 * A gateway and two peers on this machine: the peers meet over the relay, hole punch, and move a megabyte,
 * printing which path each step takes. On loopback there is no NAT, so private addresses are allowed for the
 * punch; the NAT lab (`natmesh lab run`) shows the same thing through real NATs.
 */
export function demoCommand (): Command {
  return new Command('demo')
    .description('start a gateway and two peers on this machine and show the path their traffic takes')
    .option('--api-port <port>', 'gateway HTTP API port (default: any free port)', '0')
    .action(async (options: { apiPort: string }) => {
      const dir = await mkdtemp(join(tmpdir(), 'natmesh-demo-'))
      const logger = createLogger({ level: 'warn' })
      const gatewayConfig = await loadGatewayConfig({
        env: {},
        flags: { host: '127.0.0.1', udpPort: 0, tcpPort: 0, api: `127.0.0.1:${options.apiPort}`, identityFile: join(dir, 'gateway.key') }
      })
      const gatewayIdentity = await loadOrCreateIdentity(gatewayConfig.identityFile)
      const gateway = await createGateway(gatewayConfig, { privateKey: gatewayIdentity.privateKey, logger })
      const peers: NatmeshPeer[] = []
      try {
        await gateway.start()
        const gatewayAddrs = gateway.node.getMultiaddrs().map(String)
        say('gateway', `${gateway.node.peerId.toString()} on ${gatewayAddrs.join(' ')}`)
        say('gateway', `API ${gateway.apiUrl ?? ''}/api/v1/peers, metrics ${gateway.apiUrl ?? ''}/metrics`)
        for (const name of ['A', 'B']) {
          const config = await loadPeerConfig({
            env: {},
            flags: { gateways: gatewayAddrs, host: '127.0.0.1', allowPrivateAddresses: true, identityFile: join(dir, `peer-${name}.key`) }
          })
          const identity = await loadOrCreateIdentity(config.identityFile)
          const peer = await createPeer(config, { privateKey: identity.privateKey })
          peers.push(peer)
          await peer.start()
          await waitForGateway(peer)
          say(`peer ${name}`, `${peer.peerId.toString()} reachable at ${peer.relayAddresses()[0]?.toString() ?? '?'}`)
        }
        const [a, b] = peers as [NatmeshPeer, NatmeshPeer]
        await b.node.handle(CAT_PROTOCOL, async (stream) => {
          for await (const chunk of stream) stream.send(chunk)
          await stream.close()
        }, { runOnLimitedConnection: true })

        const relayed = await a.connect(b.peerId.toString())
        const overRelay = await a.ping(b.peerId, relayed)
        say('A -> B', `connected through the gateway (${overRelay.path}), ping ${overRelay.rttMs.toFixed(2)} ms`)
        const direct = await a.waitForDirect(b.peerId, 10_000)
        if (direct == null) {
          say('A -> B', 'no direct path: traffic stays on the relay')
        } else {
          const overDirect = await a.ping(b.peerId, direct)
          const stats = a.stats().find(s => s.peer === b.peerId.toString())
          say('A -> B', `hole punched: direct ${direct.remoteAddr.toString()} ${stats?.directAfterMs ?? '?'} ms after the relayed connection, ping ${overDirect.rttMs.toFixed(2)} ms`)
        }
        const connection = a.bestConnection(b.peerId) ?? relayed
        const stream = await connection.newStream(CAT_PROTOCOL, { runOnLimitedConnection: true })
        const payload = new Uint8Array(1024 * 1024).fill(7)
        const started = performance.now()
        let echoed = 0
        const reading = (async () => { for await (const chunk of stream) echoed += chunk.byteLength })()
        for (let offset = 0; offset < payload.byteLength; offset += 64 * 1024) {
          if (!stream.send(payload.subarray(offset, offset + 64 * 1024))) await new Promise(resolve => stream.addEventListener('drain', resolve, { once: true }))
        }
        await stream.close()
        await reading
        const ms = performance.now() - started
        a.recordBytes(b.peerId, payload.byteLength, echoed)
        say('A -> B', `echoed 1 MiB over the ${connection.remoteAddr.toString().includes('/p2p-circuit') ? 'relay' : 'direct path'} in ${ms.toFixed(0)} ms (${echoed === payload.byteLength ? 'intact length' : `only ${echoed} bytes back`})`)
        say('stats', JSON.stringify(a.stats()))
      } finally {
        for (const peer of peers) await peer.stop()
        await gateway.stop()
        await rm(dir, { recursive: true, force: true })
      }
    })
}
