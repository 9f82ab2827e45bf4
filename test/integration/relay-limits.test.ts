import { createHash } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pbStream } from '@libp2p/utils'
import type { Connection, PeerId } from '@libp2p/interface'
import { Registry } from 'prom-client'
import { afterEach, describe, expect, it } from 'vitest'
import { loadGatewayConfig, loadPeerConfig } from '../../src/config/index.js'
import type { GatewayFlags } from '../../src/config/index.js'
import { createGateway } from '../../src/gateway/gateway.js'
import type { Gateway } from '../../src/gateway/gateway.js'
import { loadOrCreateIdentity } from '../../src/core/identity.js'
import { createLogger } from '../../src/core/logging.js'
import { createPeer } from '../../src/peer/peer.js'
import type { NatmeshPeer } from '../../src/peer/peer.js'
import type { PeerEvent } from '../../src/peer/events.js'
import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { HopMessage, Status } from '../../src/relay/pb/circuit-hop.js'
import { isRelayed } from '../../src/core/relay-address.js'
import { waitFor } from '../helpers/wait-for.js'

const SINK_PROTOCOL = '/natmesh-test/sink/1.0.0'
const TRANSFER_BYTES = 64 * 1024

/** A gateway and relay-only peers on 127.0.0.1; peer identities exist before the gateway starts, so it can allowlist them. */
class RelayMesh {
  gateway!: Gateway
  readonly peers: NatmeshPeer[] = []
  /** what each peer's sink handler received, and the state of the connection it came over when the stream ended */
  readonly sunk = new Map<string, { bytes: number, connectionAtEnd?: string }>()
  private dir = ''

  async init (): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'natmesh-limits-'))
  }

  async identity (name: string): Promise<PeerId> {
    return (await loadOrCreateIdentity(this.keyFile(name))).peerId
  }

  async startGateway (flags: GatewayFlags): Promise<Gateway> {
    const config = await loadGatewayConfig({ env: {}, flags: { host: '127.0.0.1', udpPort: 0, tcpPort: 0, api: '127.0.0.1:0', stunPort: 0, stunOtherPort: 0, identityFile: this.keyFile('gw'), ...flags } })
    const identity = await loadOrCreateIdentity(config.identityFile)
    this.gateway = await createGateway(config, { privateKey: identity.privateKey, logger: createLogger({ level: 'silent' }), registry: new Registry() })
    await this.gateway.start()
    return this.gateway
  }

  /** events each peer emitted, by peer id */
  readonly events = new Map<string, PeerEvent[]>()

  async startPeer (name: string): Promise<NatmeshPeer> {
    const config = await loadPeerConfig({
      env: {},
      flags: { gateways: this.gateway.node.getMultiaddrs().map(String), mode: 'relay-only', host: '127.0.0.1', allowPrivateAddresses: true, identityFile: this.keyFile(name) }
    })
    const identity = await loadOrCreateIdentity(config.identityFile)
    const peer = await createPeer(config, { privateKey: identity.privateKey })
    const events: PeerEvent[] = []
    this.events.set(peer.peerId.toString(), events)
    peer.addEventListener('event', (evt) => { events.push(evt.detail) })
    this.peers.push(peer)
    await peer.start()
    await waitFor(() => peer.relayAddresses().length > 0, 10_000, `${name} to hold a reservation`)
    // a sink: counts what arrives and answers with the byte count and the sha256 of it all
    await peer.node.handle(SINK_PROTOCOL, async (stream, connection) => {
      const key = peer.peerId.toString()
      const hash = createHash('sha256')
      const state: { bytes: number, connectionAtEnd?: string } = { bytes: 0 }
      this.sunk.set(key, state)
      try {
        for await (const chunk of stream) {
          const bytes = chunk.subarray()
          state.bytes += bytes.byteLength
          hash.update(bytes)
        }
        // NB: when the relay resets the connection, libp2p ends this loop as if the sender had closed the stream
        state.connectionAtEnd = connection.status
        stream.send(new TextEncoder().encode(`${state.bytes} ${hash.digest('hex')}`))
        await stream.close()
      } catch (err) {
        stream.abort(err instanceof Error ? err : new Error(String(err)))
      }
    }, { runOnLimitedConnection: true })
    return peer
  }

  async stop (): Promise<void> {
    for (const peer of this.peers.splice(0)) await peer.stop()
    await this.gateway?.stop()
    if (this.dir !== '') await rm(this.dir, { recursive: true, force: true })
  }

  private keyFile (name: string): string {
    return join(this.dir, `${name}.key`)
  }
}

type TransferResult = { ok: true, receipt: string } | { ok: false, error: string }

/** Sends `payload` on a new sink stream over exactly `connection`, then reads the receipt. */
async function transfer (connection: Connection, payload: Uint8Array, timeoutMs = 8000): Promise<TransferResult> {
  const signal = AbortSignal.timeout(timeoutMs)
  try {
    const stream = await connection.newStream(SINK_PROTOCOL, { signal, runOnLimitedConnection: true })
    const reply: Uint8Array[] = []
    const reading = (async () => { for await (const chunk of stream) reply.push(chunk.subarray()) })()
    reading.catch(() => {})
    for (let offset = 0; offset < payload.byteLength; offset += 4096) {
      if (stream.status !== 'open') throw new Error(`stream ${stream.status} after ${offset} bytes`)
      if (!stream.send(payload.subarray(offset, offset + 4096))) {
        await new Promise<void>((resolve, reject) => {
          const onClose = (): void => { reject(new Error(`stream closed while waiting to send, after ${offset} bytes`)) }
          stream.addEventListener('drain', () => { stream.removeEventListener('close', onClose); resolve() }, { once: true })
          stream.addEventListener('close', onClose, { once: true })
          signal.addEventListener('abort', () => { reject(new Error('timed out waiting to send')) }, { once: true })
        })
      }
    }
    await stream.close({ signal })
    await Promise.race([reading, new Promise((_resolve, reject) => signal.addEventListener('abort', () => { reject(new Error('timed out reading the receipt')) }, { once: true }))])
    return { ok: true, receipt: Buffer.concat(reply).toString() }
  } catch (err) {
    return { ok: false, error: err instanceof Error ? `${err.name}: ${err.message}` : String(err) }
  }
}

function expectedReceipt (payload: Uint8Array): string {
  return `${payload.byteLength} ${createHash('sha256').update(payload).digest('hex')}`
}

describe('relay limits on the gateway', () => {
  let mesh: RelayMesh
  afterEach(async () => { await mesh.stop() })

  it('cuts a relayed transfer at circuitDataBytes, but not to or from an allowlisted peer', async () => {
    mesh = new RelayMesh()
    await mesh.init()
    const allowlisted = await mesh.identity('c')
    await mesh.startGateway({ circuitDataBytes: 4096, allowlist: [allowlisted.toString()] })
    const a = await mesh.startPeer('a')
    const b = await mesh.startPeer('b')
    const c = await mesh.startPeer('c')
    expect(c.peerId.equals(allowlisted)).toBe(true)
    const payload = crypto.getRandomValues(new Uint8Array(TRANSFER_BYTES))

    // to B (not allowlisted): the relayed connection carries the limit, and is cut once it is used up
    const toB = await a.connect(b.peerId.toString())
    expect(isRelayed(toB.remoteAddr)).toBe(true)
    expect(toB.limits?.bytes).toBeDefined()
    expect(toB.limits!.bytes!).toBeLessThanOrEqual(4096n)
    const limited = await transfer(toB, payload)
    // cut: either the stream fails outright, or it ends without B's receipt for the whole payload
    expect(limited).not.toEqual({ ok: true, receipt: expectedReceipt(payload) })
    await waitFor(() => toB.status !== 'open', 5000, 'the limited relayed connection to be closed')
    // B never saw the whole payload: at most what fits in the limit arrived before its side was reset too
    await waitFor(() => b.node.getConnections(a.peerId).every(conn => conn.status !== 'open'), 5000, 'B\'s side of the relayed connection to be closed')
    const atB = mesh.sunk.get(b.peerId.toString())
    expect(atB?.bytes ?? 0).toBeLessThan(4096)
    if (atB?.connectionAtEnd != null) expect(atB.connectionAtEnd).not.toBe('open')

    // to C (allowlisted): the same transfer through the same gateway arrives whole
    const toC = await a.connect(c.peerId.toString())
    expect(isRelayed(toC.remoteAddr)).toBe(true)
    expect(toC.limits).toBeUndefined()
    const unlimited = await transfer(toC, payload)
    expect(unlimited).toEqual({ ok: true, receipt: expectedReceipt(payload) })
    expect(mesh.sunk.get(c.peerId.toString())).toEqual({ bytes: TRANSFER_BYTES, connectionAtEnd: 'open' })
    // and the circuit is still usable afterwards
    expect(toC.status).toBe('open')
    expect((await a.ping(c.peerId, toC)).path).toBe('relay')

    // from C (allowlisted) to B (not): unlimited too
    const fromC = await c.connect(b.peerId.toString())
    expect(isRelayed(fromC.remoteAddr)).toBe(true)
    expect(fromC.limits).toBeUndefined()
    expect(await transfer(fromC, payload)).toEqual({ ok: true, receipt: expectedReceipt(payload) })
    expect(fromC.status).toBe('open')
    // and B's side of that circuit carries no limit either
    const bSide = b.node.getConnections(c.peerId).find(conn => isRelayed(conn.remoteAddr) && conn.status === 'open')
    expect(bSide?.limits).toBeUndefined()
  })

  it('a plain stream cut at circuitDataBytes ends with an error its sender sees, not a clean close', async () => {
    mesh = new RelayMesh()
    await mesh.init()
    await mesh.startGateway({ circuitDataBytes: 256 * 1024 })
    const a = await mesh.startPeer('a')
    const b = await mesh.startPeer('b')
    const toB = await a.connect(b.peerId.toString())
    expect(isRelayed(toB.remoteAddr)).toBe(true)

    const stream = await toB.newStream(SINK_PROTOCOL, { runOnLimitedConnection: true, signal: AbortSignal.timeout(8000) })
    const ended = new Promise<Error | undefined>(resolve => { stream.addEventListener('close', (evt) => { resolve(evt.error) }, { once: true }) })
    const payload = crypto.getRandomValues(new Uint8Array(64 * 1024))
    let thrown: unknown
    try {
      // 2 MiB in all, far past the limit: a sender that just writes and closes
      for (let sent = 0; sent < 2 * 1024 * 1024; sent += payload.byteLength) {
        if (!stream.send(payload)) await stream.onDrain({ signal: AbortSignal.timeout(8000) })
      }
      await stream.close({ signal: AbortSignal.timeout(8000) })
    } catch (err) {
      thrown = err
    }
    const error = await ended
    expect(error?.name, `the stream ended ${error == null ? 'cleanly' : `with ${error.name}`}${thrown != null ? `; writing threw ${String(thrown)}` : ''}`).toBe('ConnectionResetError')
    expect(error?.message).toMatch(/connection was reset .*a relay resets a relayed connection that reaches its data or duration limit/)
    // and the writes did not all go through as if nothing had happened
    expect(thrown).toBeDefined()
    // B got less than was sent, and its end of the stream did not end as if A had finished
    const atB = mesh.sunk.get(b.peerId.toString())
    expect(atB?.bytes ?? 0).toBeLessThan(2 * 1024 * 1024)
    expect(atB?.connectionAtEnd).toBeUndefined()
  })

  it('maxCircuitsPerPeer 1: a second concurrent circuit from the same peer is refused', async () => {
    mesh = new RelayMesh()
    await mesh.init()
    await mesh.startGateway({ maxCircuitsPerPeer: 1 })
    const a = await mesh.startPeer('a')
    const b = await mesh.startPeer('b')
    const c = await mesh.startPeer('c')

    const toB = await a.connect(b.peerId.toString())
    expect(isRelayed(toB.remoteAddr)).toBe(true)
    expect((await a.ping(b.peerId, toB)).path).toBe('relay')

    // while A→B is open, A→C through the same gateway is refused, promptly (not a 5 s time-out). The gateway refuses
    // by resetting the hop stream (libp2p's per-connection stream limit), not with a RESOURCE_LIMIT_EXCEEDED status
    const refusedAt = Date.now()
    await expect(a.connect(c.peerId.toString(), AbortSignal.timeout(5000))).rejects.toThrow()
    expect(Date.now() - refusedAt).toBeLessThan(3000)
    expect(a.node.getConnections(c.peerId).filter(conn => conn.status === 'open')).toEqual([])
    // the first circuit is unharmed
    expect(toB.status).toBe('open')
    expect((await a.ping(b.peerId, toB)).path).toBe('relay')

    // other peers are not limited by A's circuit: B can still open one to C
    const bToC = await b.connect(c.peerId.toString())
    expect((await b.ping(c.peerId, bToC)).path).toBe('relay')

    // once A's circuit is closed, A gets its one circuit again
    await toB.close()
    const toC = await waitFor(async () => a.connect(c.peerId.toString(), AbortSignal.timeout(2000)).catch(() => undefined), 5000, 'A→C to be allowed once A→B is closed')
    expect((await a.ping(c.peerId, toC)).path).toBe('relay')
  })
  it('cuts a relayed connection after circuitDurationMs', async () => {
    mesh = new RelayMesh()
    await mesh.init()
    await mesh.startGateway({ circuitDurationMs: 1500 })
    const a = await mesh.startPeer('a')
    const b = await mesh.startPeer('b')
    const relayed = await a.connect(b.peerId.toString())
    const openedAt = relayed.timeline.open
    expect((await a.ping(b.peerId, relayed)).path).toBe('relay')
    await waitFor(() => relayed.status !== 'open', 6000, 'the relayed connection to hit its duration limit')
    const lived = Date.now() - openedAt
    expect(lived).toBeGreaterThanOrEqual(1400)
    expect(lived).toBeLessThan(4000)
    // the gateway link is a direct connection and is not affected
    expect(a.node.getConnections(mesh.gateway.node.peerId).some(conn => conn.status === 'open')).toBe(true)
  })

  it('maxCircuitsPerPeer counts per peer: a second connection from the same peer gets no extra circuit', async () => {
    mesh = new RelayMesh()
    await mesh.init()
    await mesh.startGateway({ maxCircuitsPerPeer: 1 })
    const a = await mesh.startPeer('a')
    const b = await mesh.startPeer('b')
    const c = await mesh.startPeer('c')
    const toB = await a.connect(b.peerId.toString())
    expect((await a.ping(b.peerId, toB)).path).toBe('relay')

    // A opens a second connection to the gateway (TCP next to its UDP overlay link) and asks for a circuit to C on it
    const tcp = mesh.gateway.node.getMultiaddrs().find(ma => ma.getComponents().some(c => c.name === 'tcp'))!
    const second = await a.node.dial(tcp, { force: true })
    expect(a.node.getConnections(mesh.gateway.node.peerId).filter(conn => conn.status === 'open').length).toBeGreaterThanOrEqual(2)
    let status: Status | undefined
    try {
      const stream = await second.newStream(RELAY_V2_HOP_CODEC, { signal: AbortSignal.timeout(5000) })
      const hop = pbStream(stream).pb(HopMessage)
      await hop.write({ type: HopMessage.Type.CONNECT, peer: { id: c.peerId.toMultihash().bytes, addrs: [] } })
      status = (await hop.read({ signal: AbortSignal.timeout(5000) })).status
      stream.abort(new Error('test done'))
    } catch {
      status = undefined // refused by resetting the stream: also a refusal
    }
    expect(status, `the gateway answered a second concurrent circuit from A with status ${status != null ? Status[status] : 'none'}`).not.toBe(Status.OK)
  })

  it('a peer with maxCircuitsPerPeer circuits open can still renew its reservation', async () => {
    mesh = new RelayMesh()
    await mesh.init()
    // a 6 s reservation is renewed halfway through, every 3 s (long ones are renewed 5 min before expiry); the
    // relay server ends circuits to a peer whose reservation lapses, so the slack must survive a loaded CI machine
    await mesh.startGateway({ maxCircuitsPerPeer: 1, reservationTtlMs: 6000 })
    const a = await mesh.startPeer('a')
    const b = await mesh.startPeer('b')
    const eventsOfA = mesh.events.get(a.peerId.toString())!
    const count = (name: PeerEvent['event']): number => eventsOfA.filter(e => e.event === name).length

    // with no circuit open, renewals work
    await waitFor(() => count('reservation') >= 2, 9000, 'A to renew its reservation')
    expect(count('gateway-lost')).toBe(0)

    // A opens its one circuit; its next renewals must still work
    const toB = await a.connect(b.peerId.toString())
    expect((await a.ping(b.peerId, toB)).path).toBe('relay')
    const renewalsBefore = count('reservation')
    await waitFor(() => count('reservation') >= renewalsBefore + 2 || count('gateway-lost') > 0, 12_000, 'A to try to renew its reservation twice more')
    const lost = eventsOfA.filter(e => e.event === 'gateway-lost')
    expect(lost, `A lost its gateway while holding one circuit: ${JSON.stringify(lost[0])}`).toEqual([])
    expect(toB.status).toBe('open')
  })
})
