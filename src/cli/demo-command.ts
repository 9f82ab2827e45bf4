import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Command } from 'commander'
import { loadGatewayConfig, loadPeerConfig } from '../config/index.js'
import { loadOrCreateIdentity } from '../core/identity.js'
import { createLogger } from '../core/logging.js'
import type { NatmeshPeer } from '../peer/peer.js'
import { waitForGateway } from './peer-command.js'

const say = (who: string, what: string): void => { process.stdout.write(`${who.padEnd(8)} ${what}\n`) }

const DEMO_PROTOCOL = '/natmesh/demo-echo/1.0.0'
const MESSAGES = 2000

/** message i: its number, then filler; 1 KiB to 16 KiB */
function message (i: number): Uint8Array {
  const bytes = new Uint8Array(1024 * (1 + (i % 16)))
  new DataView(bytes.buffer).setUint32(0, i)
  return bytes
}

/**
 * A gateway and two peers on this machine: the peers open a session over the relay, hole punch, and the session
 * moves to the direct path mid-stream, printing which path each step takes. On loopback there is no NAT, so private addresses are allowed for the
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
      // the gateway's and the peer's modules load only for the commands that run them
      const [{ createGateway }, { createPeer }] = await Promise.all([import('../gateway/gateway.js'), import('../peer/peer.js')])
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
          const peer = await createPeer(config, { privateKey: identity.privateKey, logger })
          peers.push(peer)
          await peer.start()
          await waitForGateway(peer)
          say(`peer ${name}`, `${peer.peerId.toString()} reachable at ${peer.relayAddresses()[0]?.toString() ?? '?'}`)
        }
        const [a, b] = peers as [NatmeshPeer, NatmeshPeer]
        b.handleSessions(DEMO_PROTOCOL, async (session) => {
          for await (const message of session) await session.send(message)
          await session.close()
        })

        // a session opened at once rides the relay, and moves to the direct path when the hole punch succeeds
        const session = await a.openSession(b.peerId.toString(), DEMO_PROTOCOL)
        session.addEventListener('path', (evt) => { say('session', `moved to the ${evt.detail.path} path mid-stream (move ${evt.detail.migrations})`) })
        say('A -> B', `session ${session.id.slice(0, 8)}… open on the ${session.path} path`)
        const relayed = a.bestConnection(b.peerId)
        if (relayed != null) {
          const overRelay = await a.ping(b.peerId, relayed)
          say('A -> B', `ping over the ${overRelay.path}: ${overRelay.rttMs.toFixed(2)} ms`)
        }
        const sending = (async () => {
          for (let i = 0; i < MESSAGES; i++) await session.send(message(i))
          await session.close()
        })()
        let received = 0
        let inOrder = true
        for await (const echoed of session) {
          inOrder &&= new DataView(echoed.buffer, echoed.byteOffset).getUint32(0) === received
          received++
        }
        await sending
        await session.finished()
        const direct = await a.waitForDirect(b.peerId, 10_000)
        if (direct == null) {
          say('A -> B', 'no direct path: traffic stayed on the relay')
        } else {
          const overDirect = await a.ping(b.peerId, direct)
          const directAfter = a.stats().find(s => s.peer === b.peerId.toString())?.directAfterMs ?? '?'
          say('A -> B', `hole punched: direct ${direct.remoteAddr.toString()} ${directAfter} ms after the relayed connection, ping ${overDirect.rttMs.toFixed(2)} ms`)
        }
        const stats = session.stats()
        say('session', `${received}/${MESSAGES} messages echoed ${inOrder ? 'in order, each once' : 'OUT OF ORDER'}; ${stats.bytesViaRelay} bytes via the relay, ${stats.bytesViaDirect} direct`)
      } finally {
        for (const peer of peers) await peer.stop()
        await gateway.stop()
        await rm(dir, { recursive: true, force: true })
      }
    })
}
