import { spawn } from 'node:child_process'
import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadPeerConfig } from '../../src/config/index.js'
import type { PeerFlags } from '../../src/config/index.js'
import { loadOrCreateIdentity } from '../../src/core/identity.js'
import { LabProcess } from '../../src/lab/trial-process.js'
import { createLogger } from '../../src/core/logging.js'
import { NATMESH_VERSION } from '../../src/metrics/registry.js'
import { createPeer } from '../../src/peer/peer.js'
import type { NatmeshPeer } from '../../src/peer/peer.js'
import { isRelayed } from '../../src/core/relay-address.js'
import { startStatusApi } from '../../src/peer/status-api.js'
import type { Session } from '../../src/upgrade/session.js'
import { freeUdpTcpPort } from '../helpers/free-port.js'
import { familiesStartingWith, promtoolCheck, scrape, valueOf } from '../helpers/prometheus.js'
import type { Sample } from '../helpers/prometheus.js'
import { waitFor } from '../helpers/wait-for.js'

const CLI = fileURLToPath(new URL('../../bin/natmesh.js', import.meta.url))
const README = fileURLToPath(new URL('../../README.md', import.meta.url))
const PROTOCOL = '/natmesh-test/metrics/1.0.0'
const MIB = 1024 * 1024

/** every natmesh_* name the README mentions, split into the peer's and the gateway's */
async function documentedMetrics (): Promise<{ gateway: string[], peer: string[] }> {
  const names = [...new Set((await readFile(README, 'utf8')).match(/natmesh_[a-z_]+[a-z]/g) ?? [])]
  // the README still has both lists
  expect(names).toEqual(expect.arrayContaining(['natmesh_relayed_bytes_total', 'natmesh_peer_session_migrations_total', 'natmesh_build_info']))
  return {
    gateway: names.filter(name => !name.startsWith('natmesh_peer_')),
    peer: names.filter(name => name.startsWith('natmesh_peer_') || name === 'natmesh_build_info')
  }
}

/** the process defaults and build info every natmesh daemon serves */
function expectDaemonBasics (families: Set<string>, samples: Sample[]): void {
  for (const name of ['process_cpu_user_seconds_total', 'process_resident_memory_bytes', 'process_start_time_seconds', 'process_open_fds']) {
    expect(families, name).toContain(name)
  }
  expect(valueOf(samples, 'natmesh_build_info', { version: NATMESH_VERSION })).toBe(1)
}

function expectPromtoolClean (text: string): void {
  const natmeshOnly = familiesStartingWith(text, 'natmesh_')
  expect(natmeshOnly).toContain('# TYPE natmesh_')
  const check = promtoolCheck(natmeshOnly)
  expect(check.output).toBe('')
  expect(check.ok).toBe(true)
}

describe('metrics of a gateway started through the CLI, scraped over HTTP', () => {
  let dir: string
  let gateway: LabProcess
  let api: string
  let gatewayAddrs: string[]
  let stunPorts: string[]
  const peers: NatmeshPeer[] = []

  const metrics = async (): Promise<Awaited<ReturnType<typeof scrape>>> => scrape(`${api}/metrics`)
  /** waits until the gateway's metrics satisfy `check` and returns that scrape's samples */
  const metricsWhere = async (check: (samples: Sample[]) => boolean, what: string): Promise<Sample[]> =>
    waitFor(async () => { const { samples } = await metrics(); return check(samples) ? samples : undefined }, 10_000, what)

  async function startPeer (name: string, flags: PeerFlags): Promise<NatmeshPeer> {
    const config = await loadPeerConfig({
      env: {},
      flags: { gateways: gatewayAddrs, host: '127.0.0.1', allowPrivateAddresses: true, stunPorts, identityFile: join(dir, `${name}.key`), ...flags }
    })
    const peer = await createPeer(config, { privateKey: (await loadOrCreateIdentity(config.identityFile)).privateKey })
    peers.push(peer)
    await peer.start()
    await waitFor(() => peer.relayAddresses().length > 0, 10_000, `${name} to hold a reservation`)
    return peer
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'natmesh-metrics-'))
    const turnPort = await freeUdpTcpPort()
    const child = spawn(process.execPath, [
      CLI, 'gateway', '--host', '127.0.0.1', '--udp-port', '0', '--tcp-port', '0', '--api', '127.0.0.1:0',
      '--stun-port', '0', '--stun-other-port', '0', '--turn', '--turn-port', String(turnPort),
      '--identity-file', join(dir, 'gateway.key'), '--json', '--log-level', 'warn'
    ], { cwd: dir, stdio: ['ignore', 'pipe', 'pipe'] })
    gateway = new LabProcess('gateway', child)
    const started = await gateway.waitFor(event => event.event === 'gateway-started', 30_000, 'gateway-started')
    api = started.api as string
    gatewayAddrs = started.addrs as string[]
    stunPorts = (started.stun as string[]).map(endpoint => endpoint.split(':').pop() as string)
  })

  afterAll(async () => {
    for (const peer of peers) await peer.stop()
    await gateway?.stop()
    if (!(gateway?.exitCode === 0)) console.error(gateway?.stderr.tail())
    await rm(dir, { recursive: true, force: true })
  })

  it('serves every documented gateway metric, the process defaults and natmesh_build_info, promtool-clean', async () => {
    const { text, samples, families } = await metrics()
    for (const name of (await documentedMetrics()).gateway) expect(families, name).toContain(name)
    expectDaemonBasics(families, samples)
    expect(valueOf(samples, 'natmesh_relay_reservations')).toBe(0)
    expect(valueOf(samples, 'natmesh_relay_active_circuits')).toBe(0)
    expect(valueOf(samples, 'natmesh_relayed_bytes_total')).toBe(0)
    expect(valueOf(samples, 'natmesh_hole_punch_outcomes_total', { outcome: 'success', transport: 'udx' })).toBe(0)
    expect(valueOf(samples, 'natmesh_turn_up')).toBe(1)
    // libp2p's own series are there too, in the same registry
    expect(families).toContain('libp2p_connection_manager_connections')
    expectPromtoolClean(text)
  })

  it('moves with reservations, circuits, relayed bytes and hole-punch reports', async () => {
    // a relay-only pair: its traffic stays on the relay
    const sender = await startPeer('relay-sender', { mode: 'relay-only' })
    const receiver = await startPeer('relay-receiver', { mode: 'relay-only' })
    let samples = await metricsWhere(s => valueOf(s, 'natmesh_relay_reservations') === 2, 'two reservations')
    expect(valueOf(samples, 'natmesh_connected_peers', { transport: 'udx' })).toBe(2)

    let received = 0
    const allReceived = new Promise<void>((resolve) => {
      receiver.handleSessions(PROTOCOL, async (session) => {
        for await (const message of session) {
          received += message.byteLength
          if (received >= MIB) resolve()
        }
        await session.close()
      })
    })
    const session = await sender.openSession(receiver.peerId.toString(), PROTOCOL)
    for (let i = 0; i < 64; i++) await session.send(new Uint8Array(16 * 1024).fill(i))
    await allReceived
    samples = (await metrics()).samples
    expect(valueOf(samples, 'natmesh_relay_active_circuits')).toBe(1)
    expect(valueOf(samples, 'natmesh_relayed_bytes_total')).toBeGreaterThanOrEqual(MIB)

    // the circuit ends: the gauge goes back down
    await session.close()
    await session.finished()
    for (const connection of sender.node.getConnections(receiver.peerId)) await connection.close()
    await metricsWhere(s => valueOf(s, 'natmesh_relay_active_circuits') === 0, 'the circuit to be gone')

    // an opportunistic pair hole punches on loopback and reports it
    const a = await startPeer('punch-a', {})
    const b = await startPeer('punch-b', {})
    await a.connect(b.peerId.toString())
    expect(await a.waitForDirect(b.peerId, 10_000)).toBeDefined()
    samples = await metricsWhere(s => (valueOf(s, 'natmesh_hole_punch_outcomes_total', { outcome: 'success', transport: 'udx' }) ?? 0) >= 1, 'a hole-punch report')
    expect(valueOf(samples, 'natmesh_hole_punch_strategy_total', { strategy: 'dcutr', outcome: 'success' })).toBeGreaterThanOrEqual(1)
    expect(valueOf(samples, 'natmesh_hole_punch_duration_seconds_count', { strategy: 'dcutr', outcome: 'success' })).toBeGreaterThanOrEqual(1)
    expect(valueOf(samples, 'natmesh_relay_reservations')).toBe(4)
    expect(valueOf(samples, 'natmesh_connected_peers', { transport: 'udx' })).toBe(4)

    // a peer given only the gateway's TCP address
    await startPeer('tcp-only', { mode: 'relay-only', gateways: gatewayAddrs.filter(address => address.includes('/tcp/')) })
    samples = await metricsWhere(s => valueOf(s, 'natmesh_relay_reservations') === 5, 'a fifth reservation')
    expect(valueOf(samples, 'natmesh_connected_peers', { transport: 'tcp' })).toBe(1)
    expect(valueOf(samples, 'natmesh_connected_peers', { transport: 'udx' })).toBe(4)
  })

  it('a peer serves its own /metrics: connections, sessions, migrations, bytes per path, punches, reservations, links', async () => {
    const a = await startPeer('api-a', {})
    const b = await startPeer('api-b', {})
    const status = await startStatusApi(a, { host: '127.0.0.1', port: 0, logger: createLogger({ level: 'silent' }) })
    try {
      const peerMetrics = async (): Promise<Awaited<ReturnType<typeof scrape>>> => scrape(`${status.url}/metrics`)
      let { text, samples, families } = await peerMetrics()
      for (const name of (await documentedMetrics()).peer) expect(families, name).toContain(name)
      expectDaemonBasics(families, samples)
      expectPromtoolClean(text)
      expect(valueOf(samples, 'natmesh_peer_reservations')).toBe(1)
      expect(valueOf(samples, 'natmesh_peer_gateway_links', { transport: 'udx' })).toBe(1)
      expect(valueOf(samples, 'natmesh_peer_connections', { path: 'relay' })).toBe(0)
      expect(valueOf(samples, 'natmesh_peer_sessions_opened_total')).toBe(0)

      const messages: Uint8Array[] = []
      let arrived: () => void = () => {}
      b.handleSessions(PROTOCOL, async (session) => {
        for await (const message of session) { messages.push(message); arrived() }
        await session.close()
      })
      const next = async (count: number): Promise<void> => {
        if (messages.length >= count) return
        await new Promise<void>((resolve) => { arrived = () => { if (messages.length >= count) resolve() } })
      }

      // b dials through the relay, which makes the hole punch; a's session then starts on the direct path
      await b.connect(a.peerId.toString())
      expect(await a.waitForDirect(b.peerId, 10_000)).toBeDefined()
      const session: Session = await a.openSession(b.peerId.toString(), PROTOCOL)
      expect(session.path).toBe('direct')
      await session.send(new Uint8Array(1000))
      await next(1)
      // a sender counts its bytes once the remote acknowledged them (on the path of the copy that got there)
      await waitFor(() => session.stats().bytesViaDirect >= 1000, 5000, 'the first message to be acknowledged')
      samples = (await peerMetrics()).samples
      expect(valueOf(samples, 'natmesh_peer_connections', { path: 'direct' })).toBeGreaterThanOrEqual(1)
      expect(valueOf(samples, 'natmesh_peer_connections', { path: 'relay' })).toBeGreaterThanOrEqual(1)
      expect(valueOf(samples, 'natmesh_peer_sessions', { path: 'direct' })).toBe(1)
      expect(valueOf(samples, 'natmesh_peer_sessions_opened_total')).toBe(1)
      expect(valueOf(samples, 'natmesh_peer_session_bytes_total', { path: 'direct' })).toBeGreaterThanOrEqual(1000)
      expect(valueOf(samples, 'natmesh_peer_session_bytes_total', { path: 'relay' })).toBe(0)
      expect(valueOf(samples, 'natmesh_peer_hole_punches_total', { outcome: 'success', strategy: 'dcutr' })).toBe(1)

      // the direct path dies: the session moves to the relay, and what it sends counts there
      const moved = new Promise<void>((resolve) => { session.addEventListener('path', () => { resolve() }, { once: true }) })
      for (const connection of a.node.getConnections(b.peerId)) if (!isRelayed(connection.remoteAddr)) await connection.close()
      await moved
      expect(session.path).toBe('relay')
      await session.send(new Uint8Array(2000))
      await next(2)
      await waitFor(() => session.stats().bytesViaRelay >= 2000, 5000, 'the second message to be acknowledged')
      samples = (await peerMetrics()).samples
      expect(valueOf(samples, 'natmesh_peer_session_migrations_total')).toBe(1)
      expect(valueOf(samples, 'natmesh_peer_session_bytes_total', { path: 'relay' })).toBeGreaterThanOrEqual(2000)
      expect(valueOf(samples, 'natmesh_peer_sessions', { path: 'relay' })).toBe(1)

      // an ended session's counts stay in the totals
      await session.close()
      await session.finished()
      samples = (await peerMetrics()).samples
      expect(valueOf(samples, 'natmesh_peer_sessions', { path: 'relay' })).toBe(0)
      expect(valueOf(samples, 'natmesh_peer_sessions_opened_total')).toBe(1)
      expect(valueOf(samples, 'natmesh_peer_session_migrations_total')).toBe(1)
      expect(valueOf(samples, 'natmesh_peer_session_bytes_total', { path: 'relay' })).toBeGreaterThanOrEqual(2000)
    } finally {
      await status.close()
    }
  })
})
