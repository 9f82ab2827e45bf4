import { createHash, randomFillSync } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { RELAY_V2_HOP_CODEC, RELAY_V2_STOP_CODEC } from '@libp2p/circuit-relay-v2'
import type { Connection, Stream, StreamCloseEvent } from '@libp2p/interface'
import { afterEach, describe, expect, it } from 'vitest'
import { loadPeerConfig } from '../../src/config/index.js'
import type { PeerFlags } from '../../src/config/index.js'
import { loadOrCreateIdentity } from '../../src/core/identity.js'
import { isRelayed } from '../../src/core/relay-address.js'
import { createPeer } from '../../src/peer/peer.js'
import { DCUTR_PROTOCOL } from '../../src/dcutr/index.js'
import { FORWARD_STOP_WORKERS_PROTOCOL } from '../../src/relay/forward/messages.js'
import type { NatmeshPeer } from '../../src/peer/peer.js'
import { exchangeCounted } from '../helpers/counted-messages.js'
import { BlockedUdpPort } from '../helpers/blocked-udp-port.js'
import { CliGateway } from '../helpers/cli-gateway.js'
import { scrape } from '../helpers/prometheus.js'
import type { Sample } from '../helpers/prometheus.js'
import { waitFor } from '../helpers/wait-for.js'

const SINK = '/natmesh-test/sink/1.0.0'
const SESSIONS = '/natmesh-test/count/1.0.0'
const MiB = 1024 * 1024
const CHUNK = 64 * 1024

/** A CLI gateway process and natmesh peers (in this process) that reserve on it over the UDP overlay. */
class Mesh {
  gateway!: CliGateway
  readonly peers: NatmeshPeer[] = []
  private dir = ''

  async start (gatewayArgs: string[]): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'natmesh-forward-'))
    this.gateway = await CliGateway.start(gatewayArgs)
  }

  async peer (flags: PeerFlags = {}): Promise<NatmeshPeer> {
    const config = await loadPeerConfig({
      env: {},
      flags: { gateways: this.gateway.addrs, host: '127.0.0.1', allowPrivateAddresses: true, identityFile: join(this.dir, `peer-${this.peers.length}.key`), ...flags }
    })
    const peer = await createPeer(config, { privateKey: (await loadOrCreateIdentity(config.identityFile)).privateKey })
    this.peers.push(peer)
    await peer.start()
    await waitFor(() => peer.relayAddresses().length > 0, 10_000, 'the peer to hold a reservation')
    // a sink: answers with the byte count and sha256 of what arrived
    await peer.node.handle(SINK, async (stream) => {
      const hash = createHash('sha256')
      let bytes = 0
      for await (const chunk of stream) {
        bytes += chunk.byteLength
        hash.update(chunk.subarray())
      }
      stream.send(new TextEncoder().encode(`${bytes} ${hash.digest('hex')}`))
      await stream.close()
    }, { runOnLimitedConnection: true })
    return peer
  }

  async metrics (): Promise<Sample[]> {
    return (await scrape(`${this.gateway.api}/metrics`)).samples
  }

  async stop (): Promise<void> {
    for (const peer of this.peers.splice(0)) await peer.stop()
    await this.gateway?.stop()
    if (this.dir !== '') await rm(this.dir, { recursive: true, force: true })
  }
}

function udpPortOf (addr: string): number {
  return Number(/\/udp\/(\d+)\//.exec(addr)?.[1])
}

function value (samples: Sample[], name: string, labels: Record<string, string> = {}): number {
  return samples.filter(s => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)).reduce((sum, s) => sum + s.value, 0)
}

/** bytes the gateway's own libp2p streams of circuit relay v2 carried: what it decrypted and re-multiplexed */
function circuitRelayBytes (samples: Sample[]): number {
  return [RELAY_V2_HOP_CODEC, RELAY_V2_STOP_CODEC].reduce((sum, codec) => sum + value(samples, 'libp2p_data_transfer_bytes_total', { protocol: `${codec} received` }), 0)
}

/** Waits for 'drain'; a stream that closes meanwhile fails with the error it closed with. */
async function drained (stream: Stream): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onClose = (evt: StreamCloseEvent): void => { reject(evt.error ?? new Error('stream closed cleanly while waiting for drain')) }
    stream.addEventListener('drain', () => { stream.removeEventListener('close', onClose); resolve() }, { once: true })
    stream.addEventListener('close', onClose, { once: true })
  })
}

/** Sends `payload` on a new sink stream over `connection` and returns the receipt. */
async function transfer (connection: Connection, payload: Uint8Array): Promise<string> {
  const signal = AbortSignal.timeout(30_000)
  const stream = await connection.newStream(SINK, { runOnLimitedConnection: true, signal })
  const reply: Uint8Array[] = []
  const reading = (async () => { for await (const chunk of stream) reply.push(chunk.subarray()) })()
  reading.catch(() => {})
  for (let offset = 0; offset < payload.byteLength; offset += CHUNK) {
    if (!stream.send(payload.subarray(offset, offset + CHUNK))) await drained(stream)
  }
  await stream.close({ signal })
  await reading
  return Buffer.concat(reply).toString()
}

function receipt (payload: Uint8Array): string {
  return `${payload.byteLength} ${createHash('sha256').update(payload).digest('hex')}`
}

describe('forwarded circuits (natmesh peers on the UDP overlay, CLI gateway)', () => {
  let mesh: Mesh
  afterEach(async () => { await mesh.stop() })

  it('relays over a circuit a relay worker forwards without decrypting: bytes intact, limits and metrics kept', async () => {
    mesh = new Mesh()
    await mesh.start(['--relay-workers', '2'])
    expect(mesh.gateway.relayWorkerPorts).toHaveLength(2)
    // ports of their own, beside the gateway's main UDP port
    expect(new Set([...mesh.gateway.relayWorkerPorts, udpPortOf(mesh.gateway.address('udx'))]).size).toBe(3)
    const a = await mesh.peer({ mode: 'relay-only' })
    const b = await mesh.peer({ mode: 'relay-only' })
    const connection = await a.connect(b.peerId.toString())
    expect(isRelayed(connection.remoteAddr)).toBe(true)
    // the reservation's default limits, as with circuit relay v2: the session layer and hole punching see a limited connection
    expect(connection.limits?.bytes).toBe(64n * BigInt(MiB))
    const bSide = await waitFor(() => b.node.getConnections(a.peerId).find(conn => isRelayed(conn.remoteAddr)), 5000, 'B\'s side of the circuit')
    expect(bSide.limits?.bytes).toBe(64n * BigInt(MiB))

    const payload = randomFillSync(new Uint8Array(8 * MiB))
    expect(await transfer(connection, payload)).toBe(receipt(payload))

    const samples = await mesh.metrics()
    expect(value(samples, 'natmesh_relay_forwarded_circuits_total', { path: 'worker' })).toBe(1)
    expect(value(samples, 'natmesh_relay_forwarded_circuits_total', { path: 'in-loop' })).toBe(0)
    expect(value(samples, 'natmesh_relay_active_circuits')).toBe(1)
    // counted as relayed (udx payload: noise and yamux framing included) ...
    expect(value(samples, 'natmesh_relayed_bytes_total')).toBeGreaterThanOrEqual(payload.byteLength)
    // ... but never through the gateway's noise and yamux
    expect(circuitRelayBytes(samples)).toBeLessThan(64 * 1024)

    await connection.close()
    await waitFor(async () => value(await mesh.metrics(), 'natmesh_relay_active_circuits') === 0, 10_000, 'the gateway to drop the closed circuit')
  })

  it('moves a session from a forwarded circuit to the direct path without losing, duplicating or reordering', async () => {
    mesh = new Mesh()
    await mesh.start(['--circuit-data-bytes', String(1 << 30), '--relay-workers', '1'])
    const a = await mesh.peer()
    const b = await mesh.peer()
    const count = 2000
    const { fromA, fromB, openedOn, session, bSession } = await exchangeCounted(a, b, SESSIONS, count)
    expect(openedOn).toBe('relay')
    expect(fromB).toEqual([...Array(count).keys()])
    expect(fromA).toEqual([...Array(count).keys()])
    expect(session.stats().migrations).toBeGreaterThanOrEqual(1)
    expect(session.stats().bytesViaDirect).toBeGreaterThan(0)
    expect(bSession.stats().messagesReceived).toBe(count)
    expect(value(await mesh.metrics(), 'natmesh_relay_forwarded_circuits_total', { path: 'worker' })).toBeGreaterThanOrEqual(1)
  })

  it('peers that hole punch dial the mappings the gateway passes on with the circuit: direct without any DCUtR exchange', async () => {
    mesh = new Mesh()
    await mesh.start(['--relay-workers', '0'])
    const a = await mesh.peer()
    const b = await mesh.peer()
    // with no DCUtR handler on either side, B's exchange is refused and A never dials on its own account: only
    // the early dials from the circuit's hints can make the direct path
    for (const peer of [a, b]) await peer.node.unhandle(DCUTR_PROTOCOL)
    const relayed = await a.connect(b.peerId.toString())
    expect(isRelayed(relayed.remoteAddr)).toBe(true)
    const direct = await a.waitForDirect(b.peerId, 10_000)
    expect(direct?.remoteAddr.toString()).toMatch(/^\/ip4\/127\.0\.0\.1\/udp\/\d+\/udx/)
    expect((await a.ping(b.peerId)).path).toBe('direct')
    expect(value(await mesh.metrics(), 'natmesh_relay_forwarded_circuits_total', { path: 'in-loop' })).toBe(1)
  })

  it('a relay-only peer is told no mapping and passes its own to nobody: it stays on the circuit', async () => {
    mesh = new Mesh()
    await mesh.start(['--relay-workers', '0'])
    const a = await mesh.peer()
    const b = await mesh.peer({ mode: 'relay-only' })
    const relayed = await a.connect(b.peerId.toString())
    expect(isRelayed(relayed.remoteAddr)).toBe(true)
    // A punches, B does not: had the gateway passed B's mapping on, A's early dial would have reached it
    expect(await a.waitForDirect(b.peerId, 3000)).toBeUndefined()
    expect((await a.ping(b.peerId)).path).toBe('relay')
  })

  it('cuts a forwarded circuit past --circuit-data-bytes, as an error the sender sees', async () => {
    mesh = new Mesh()
    await mesh.start(['--circuit-data-bytes', String(16 * MiB), '--relay-workers', '1'])
    const a = await mesh.peer({ mode: 'relay-only' })
    const b = await mesh.peer({ mode: 'relay-only' })
    const connection = await a.connect(b.peerId.toString())
    const payload = randomFillSync(new Uint8Array(48 * MiB))
    const outcome = await transfer(connection, payload).then(r => `receipt ${r}`, (err: Error) => `${err.name}: ${err.message}`)
    expect(outcome).toMatch(/^ConnectionResetError: the connection was reset \(the gateway ended the forwarded circuit\)/)
    await waitFor(() => connection.status !== 'open', 5000, 'the cut connection to close')
    expect(value(await mesh.metrics(), 'natmesh_relay_forwarded_circuits_total', { path: 'worker' })).toBe(1)
  })

  it('--relay-workers 0: circuits are forwarded on the gateway\'s main loop, through its main UDP port', async () => {
    mesh = new Mesh()
    await mesh.start(['--relay-workers', '0'])
    expect(mesh.gateway.relayWorkerPorts).toEqual([])
    const a = await mesh.peer({ mode: 'relay-only' })
    const b = await mesh.peer({ mode: 'relay-only' })
    const connection = await a.connect(b.peerId.toString())
    const payload = randomFillSync(new Uint8Array(8 * MiB))
    expect(await transfer(connection, payload)).toBe(receipt(payload))
    const samples = await mesh.metrics()
    expect(value(samples, 'natmesh_relay_forwarded_circuits_total', { path: 'in-loop' })).toBe(1)
    expect(value(samples, 'natmesh_relay_forwarded_circuits_total', { path: 'worker' })).toBe(0)
    expect(circuitRelayBytes(samples)).toBeLessThan(64 * 1024)
  })

  it('a target that knows only the 1.0.0 forward protocols gets its circuits forwarded in-loop, as before', async () => {
    mesh = new Mesh()
    await mesh.start(['--relay-workers', '1'])
    const a = await mesh.peer({ mode: 'relay-only' })
    const b = await mesh.peer({ mode: 'relay-only' })
    // what a peer of an older release answers: the stop protocol without worker ports
    await b.node.unhandle(FORWARD_STOP_WORKERS_PROTOCOL)
    const connection = await a.connect(b.peerId.toString())
    const payload = randomFillSync(new Uint8Array(2 * MiB))
    expect(await transfer(connection, payload)).toBe(receipt(payload))
    const samples = await mesh.metrics()
    expect(value(samples, 'natmesh_relay_forwarded_circuits_total', { path: 'in-loop' })).toBe(1)
    expect(value(samples, 'natmesh_relay_forwarded_circuits_total', { path: 'worker' })).toBe(0)
  })

  it('a peer whose packets cannot reach the relay worker\'s port gets the circuit forwarded in-loop instead', async () => {
    mesh = new Mesh()
    await mesh.start(['--relay-workers', '1'])
    const [workerPort] = mesh.gateway.relayWorkerPorts
    if (workerPort == null) throw new Error('the gateway started no relay worker')
    const a = await mesh.peer({ mode: 'relay-only' })
    const b = await mesh.peer({ mode: 'relay-only' })
    // a firewall in front of the gateway that opens only its main ports
    const firewall = await BlockedUdpPort.drop(workerPort)
    try {
      const connection = await a.connect(b.peerId.toString())
      const payload = randomFillSync(new Uint8Array(2 * MiB))
      expect(await transfer(connection, payload)).toBe(receipt(payload))
      const samples = await mesh.metrics()
      expect(value(samples, 'natmesh_relay_forwarded_circuits_total', { path: 'in-loop' })).toBe(1)
      expect(value(samples, 'natmesh_relay_forwarded_circuits_total', { path: 'worker' })).toBe(1)
      expect(await firewall.dropped()).toBeGreaterThan(0)
      await waitFor(() => /reached relay worker port \d+ within \d+ ms.*is UDP port \d+ open/.test(mesh.gateway.logTail()), 5000, 'the gateway to log the unreachable worker port')
    } finally {
      await firewall.remove()
    }
  })

  it('--no-relay-forwarding: the same peers get circuit relay v2 through the gateway', async () => {
    mesh = new Mesh()
    await mesh.start(['--no-relay-forwarding'])
    const a = await mesh.peer({ mode: 'relay-only' })
    const b = await mesh.peer({ mode: 'relay-only' })
    const connection = await a.connect(b.peerId.toString())
    expect(isRelayed(connection.remoteAddr)).toBe(true)
    const payload = randomFillSync(new Uint8Array(2 * MiB))
    expect(await transfer(connection, payload)).toBe(receipt(payload))
    const samples = await mesh.metrics()
    expect(value(samples, 'natmesh_relay_forwarded_circuits_total')).toBe(0)
    expect(circuitRelayBytes(samples)).toBeGreaterThanOrEqual(payload.byteLength)
  })
})
