import { createSocket } from 'node:dgram'
import { mkdtemp, rm } from 'node:fs/promises'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Registry } from 'prom-client'
import { afterEach, beforeEach, expect, it } from 'vitest'
import type { Server } from 'node:net'
import { startPeerFromOptions } from '../../src/cli/peer-command.js'
import { loadGatewayConfig, loadPeerConfig } from '../../src/config/index.js'
import { createLogger } from '../../src/core/logging.js'
import { createGateway } from '../../src/gateway/gateway.js'
import { createPeer } from '../../src/peer/peer.js'
import { SESSION_PROTOCOL } from '../../src/upgrade/carrier.js'
import { freeUdpTcpPort } from '../helpers/free-port.js'

/**
 * A daemon whose start fails part way stops what it had started: its ports can be bound again at once (a
 * listener left open would refuse that), and its libp2p node is stopped.
 */

let dir: string
const held: Array<{ close: () => void }> = []
beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'natmesh-rollback-')) })
afterEach(async () => {
  for (const thing of held.splice(0)) thing.close()
  await rm(dir, { recursive: true, force: true })
})

async function holdTcp (listen: number | string): Promise<Server> {
  const server = createServer()
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    if (typeof listen === 'string') server.listen(listen, resolve)
    else server.listen(listen, '127.0.0.1', resolve)
  })
  held.push(server)
  return server
}

/** binds `port` on UDP and TCP at 127.0.0.1 and lets go again; rejects with EADDRINUSE when something holds it */
async function bindAgain (port: number): Promise<void> {
  const udp = createSocket('udp4')
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject)
    udp.bind(port, '127.0.0.1', resolve)
  })
  udp.close()
  const tcp = await holdTcp(port)
  await new Promise<void>(resolve => { tcp.close(() => { resolve() }) })
}

/** a gateway address where none answers: the peer's gateway links keep retrying it, their timers run */
async function absentGateway (): Promise<string> {
  const id = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  return `/ip4/127.0.0.1/udp/${await freeUdpTcpPort()}/udx/p2p/${id.toString()}`
}

it('a peer whose control socket is taken stops its status API and its node, and says why', async () => {
  const [port, apiPort] = [await freeUdpTcpPort(), await freeUdpTcpPort()]
  const socketPath = join(dir, 'peer.sock')
  await holdTcp(socketPath)

  const started = startPeerFromOptions({
    gateway: [await absentGateway()],
    host: '127.0.0.1',
    udpPort: String(port),
    tcpPort: String(port),
    api: `127.0.0.1:${apiPort}`,
    controlSocket: socketPath,
    natDetection: false,
    identityFile: join(dir, 'peer.key'),
    logLevel: 'silent'
  }, { printEvents: false, throwawayIdentity: true, controlSocket: true })

  await expect(started).rejects.toThrow('a running daemon is serving this socket')
  // the status API had started, and so had the node on `port`: both let go
  await bindAgain(apiPort)
  await bindAgain(port)
})

it('a peer whose start fails after its node started stops the node again and rethrows', async () => {
  const port = await freeUdpTcpPort()
  const config = await loadPeerConfig({
    env: {},
    flags: { gateways: [await absentGateway()], host: '127.0.0.1', udpPort: port, tcpPort: port, natDetection: false, controlSocket: false, identityFile: join(dir, 'peer.key') }
  })
  const peer = await createPeer(config, { privateKey: await generateKeyPair('Ed25519') })
  // the session layer's protocol is taken, so the step after the node's start fails
  await peer.node.handle(SESSION_PROTOCOL, () => {})

  await expect(peer.start()).rejects.toThrow(SESSION_PROTOCOL)
  expect(peer.node.status).toBe('stopped')
  await bindAgain(port)
})

it('a gateway whose API port is taken stops its node and STUN server, and says why', async () => {
  const [port, stunPort, stunOtherPort, apiPort] = [await freeUdpTcpPort(), await freeUdpTcpPort(), await freeUdpTcpPort(), await freeUdpTcpPort()]
  await holdTcp(apiPort)
  const config = await loadGatewayConfig({
    env: {},
    flags: { host: '127.0.0.1', udpPort: port, tcpPort: port, stunPort, stunOtherPort, api: `127.0.0.1:${apiPort}`, identityFile: join(dir, 'gw.key') }
  })
  const gateway = await createGateway(config, { privateKey: await generateKeyPair('Ed25519'), logger: createLogger({ level: 'silent' }), registry: new Registry() })

  await expect(gateway.start()).rejects.toThrow('already in use')
  expect(gateway.node.status).toBe('stopped')
  for (const taken of [port, stunPort, stunOtherPort]) await bindAgain(taken)
})
