/**
 * One end of a bench/bulk.ts path, in a process of its own so its CPU time is its own. Forked with
 * argv <stack> <role> [json options]; stack: natmesh | hyperdht | udx | libp2p-tcp | node-tcp, role: server |
 * client. Requests over IPC, {id, cmd, ...} → {id, result} or {id, error}:
 *   connect {info}                the client connects to the server's `ready` info (udx: both ends do)
 *   send {path, sizeBytes, chunkBytes, verify}   the client sends one transfer, replies with its ms
 *   cpu                           user + system CPU ms of this process so far
 *   stop
 * Sends {ready: info} once listening. Imports the compiled project from dist/.
 */
import { createHash, randomFillSync } from 'node:crypto'
import { once } from 'node:events'
import { createServer, connect as tcpConnect } from 'node:net'
import type { Duplex } from 'node:stream'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import UDX from 'udx-native'
import type { Connection, Libp2p } from '@libp2p/interface'
import { waitFor } from '../../test/helpers/wait-for.ts'
import { BULK_PROTOCOL, duplexPipe, libp2pPipe, sendOver, serveDuplex, serveLibp2p, serveSession, sessionPipe } from './bulk-wire.ts'
import type { Pipe, SendResult } from './bulk-wire.ts'

export type Stack = 'natmesh' | 'hyperdht' | 'udx' | 'libp2p-tcp' | 'node-tcp'
export const SESSION_PROTOCOL = '/natmesh/bench/bulk-session/1.0.0'

export interface SendRequest { path: string, sizeBytes: number, chunkBytes: number, verify: boolean }

/** what a client end can do once connected: a fresh pipe per transfer for each path it carries */
type Pipes = Record<string, () => Promise<Pipe>>

interface End {
  ready: unknown
  connect: (info: unknown) => Promise<{ pipes?: Pipes, detail?: string }>
  stop: () => Promise<void>
}

const [stack, role, optionsJson] = process.argv.slice(2) as [Stack, 'server' | 'client', string | undefined]
const options = JSON.parse(optionsJson ?? '{}') as Record<string, unknown>
if (process.send == null) throw new Error('bulk-child: run me with fork()')

async function natmeshEnd (): Promise<End> {
  const { loadPeerConfig } = await import('../../dist/config/index.js')
  const { loadOrCreateIdentity } = await import('../../dist/core/identity.js')
  const { createPeer } = await import('../../dist/peer/peer.js')
  const config = await loadPeerConfig({
    env: {},
    flags: { gateways: options.gateways as string[], host: '127.0.0.1', allowPrivateAddresses: true, natDetection: false, identityFile: options.identityFile as string, logLevel: 'silent' }
  })
  const identity = await loadOrCreateIdentity(config.identityFile)
  const peer = await createPeer(config, { privateKey: identity.privateKey })
  await peer.start()
  await waitFor(() => peer.relayAddresses().length > 0, 10_000, 'a reservation on the gateway')
  if (role === 'server') {
    await peer.node.handle(BULK_PROTOCOL, (stream) => { serveLibp2p(stream) }, { runOnLimitedConnection: true })
    peer.handleSessions(SESSION_PROTOCOL, (session) => { serveSession(session) })
  }
  return {
    ready: { peerId: peer.peerId.toString() },
    connect: async (info) => {
      const target = (info as { peerId: string }).peerId
      const relayed = await peer.connect(target)
      const direct = await peer.waitForDirect(relayed.remotePeer, 15_000)
      if (direct == null) throw new Error('no direct connection within 15 s (hole punch failed?)')
      const session = await peer.openSession(target, SESSION_PROTOCOL)
      await waitFor(() => session.path === 'direct', 10_000, 'the session on the direct path')
      const streamOn = (connection: Connection) => async () => libp2pPipe(await connection.newStream(BULK_PROTOCOL, { runOnLimitedConnection: true, signal: AbortSignal.timeout(10_000) }))
      const sessionPipeOnce = sessionPipe(session)
      return {
        pipes: { direct: streamOn(direct), relayed: streamOn(relayed), session: async () => sessionPipeOnce },
        detail: `direct ${direct.remoteAddr.toString()} (${direct.encryption ?? '?'}, ${direct.multiplexer ?? '?'}), relayed ${relayed.remoteAddr.toString()}`
      }
    },
    stop: async () => { await peer.stop() }
  }
}

async function hyperdhtEnd (): Promise<End> {
  const { default: DHT } = await import('hyperdht')
  const dht = new DHT({ bootstrap: options.bootstrap as Array<{ host: string, port: number }>, host: '127.0.0.1' })
  if (role === 'server') {
    const keyPair = DHT.keyPair()
    const server = dht.createServer((socket) => { serveDuplex(socket) })
    await server.listen(keyPair)
    return { ready: { publicKey: keyPair.publicKey.toString('hex') }, connect: async () => ({}), stop: async () => { await dht.destroy() } }
  }
  return {
    ready: {},
    connect: async (info) => {
      const socket = dht.connect(Buffer.from((info as { publicKey: string }).publicKey, 'hex'))
      await once(socket, 'open')
      const pipe = duplexPipe(socket)
      const raw = (socket as Duplex & { rawStream?: { remoteHost?: string, remotePort?: number } }).rawStream
      return { pipes: { hyperdht: async () => pipe }, detail: `secret-stream over udx to ${raw?.remoteHost ?? '?'}:${raw?.remotePort ?? '?'}` }
    },
    stop: async () => { await dht.destroy() }
  }
}

async function udxEnd (): Promise<End> {
  const udx = new UDX()
  const socket = udx.createSocket()
  socket.bind(0, '127.0.0.1')
  const localId = role === 'server' ? 1 : 2
  const stream = udx.createStream(localId)
  if (role === 'server') serveDuplex(stream)
  const pipe = duplexPipe(stream)
  return {
    ready: { port: socket.address()!.port },
    connect: async (info) => {
      stream.connect(socket, role === 'server' ? 2 : 1, (info as { port: number }).port, '127.0.0.1')
      return { pipes: { udx: async () => pipe }, detail: 'one udx-native stream' }
    },
    stop: async () => { stream.destroy(); await socket.close() }
  }
}

async function libp2pTcpEnd (): Promise<End> {
  const node: Libp2p = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false }
  })
  if (role === 'server') await node.handle(BULK_PROTOCOL, (stream) => { serveLibp2p(stream) })
  return {
    ready: { addr: node.getMultiaddrs()[0]!.toString() },
    connect: async (info) => {
      const connection = await node.dial(multiaddr((info as { addr: string }).addr))
      return { pipes: { 'libp2p-tcp': async () => libp2pPipe(await connection.newStream(BULK_PROTOCOL)) }, detail: connection.remoteAddr.toString() }
    },
    stop: async () => { await node.stop() }
  }
}

async function nodeTcpEnd (): Promise<End> {
  if (role === 'server') {
    const server = createServer((socket) => { serveDuplex(socket) })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const address = server.address()
    return { ready: { port: typeof address === 'object' && address != null ? address.port : 0 }, connect: async () => ({}), stop: async () => { server.close() } }
  }
  return {
    ready: {},
    connect: async (info) => {
      const socket = tcpConnect((info as { port: number }).port, '127.0.0.1')
      await once(socket, 'connect')
      const pipe = duplexPipe(socket)
      return { pipes: { 'node-tcp': async () => pipe }, detail: 'kernel TCP' }
    },
    stop: async () => {}
  }
}

const ends: Record<Stack, () => Promise<End>> = { natmesh: natmeshEnd, hyperdht: hyperdhtEnd, udx: udxEnd, 'libp2p-tcp': libp2pTcpEnd, 'node-tcp': nodeTcpEnd }
const end = await ends[stack]()
let pipes: Pipes = {}
let payload: { bytes: Uint8Array, sha256: string } | undefined

async function send (request: SendRequest): Promise<SendResult> {
  if (payload?.bytes.byteLength !== request.sizeBytes) {
    const bytes = randomFillSync(new Uint8Array(request.sizeBytes))
    payload = { bytes, sha256: createHash('sha256').update(bytes).digest('hex') }
  }
  const open = pipes[request.path]
  if (open == null) throw new Error(`this end carries no path "${request.path}" (connected: ${Object.keys(pipes).join(', ') || 'none'})`)
  const result = await sendOver(await open(), payload.bytes, request.chunkBytes, request.verify)
  if (result.received !== request.sizeBytes) throw new Error(`the receiver counted ${result.received} bytes of ${request.sizeBytes}`)
  if (request.verify && result.sha256 !== payload.sha256) throw new Error('CORRUPTED: the sha256 of what arrived differs from what was sent')
  return result
}

process.on('message', (message: { id: number, cmd: string, info?: unknown } & Partial<SendRequest>) => {
  const run = async (): Promise<unknown> => {
    switch (message.cmd) {
      case 'connect': {
        const connected = await end.connect(message.info)
        pipes = connected.pipes ?? {}
        return connected.detail ?? ''
      }
      case 'send': return send(message as unknown as SendRequest)
      case 'cpu': { const cpu = process.cpuUsage(); return (cpu.user + cpu.system) / 1000 }
      case 'stop': await end.stop(); setImmediate(() => process.exit(0)); return null
      default: throw new Error(`unknown command ${message.cmd}`)
    }
  }
  run().then(
    (result) => { process.send?.({ id: message.id, result }) },
    (err: Error) => { process.send?.({ id: message.id, error: String(err.message ?? err) }) }
  )
})
process.on('disconnect', () => { process.exit(0) })
process.send({ ready: end.ready })
