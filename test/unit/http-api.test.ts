import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { request } from 'node:http'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { Registry } from 'prom-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ObservedAddressBook } from '../../src/gateway/address-book.js'
import { startHttpApi } from '../../src/gateway/http-api.js'
import { GatewayMetrics } from '../../src/gateway/metrics.js'
import { createLogger } from '../../src/core/logging.js'
import '../../src/transport/multiaddr.js' // registers the /udx protocol, as the gateway's transport does
import type { HttpApi } from '../../src/gateway/http-api.js'
import { startJsonApi } from '../../src/http/json-api.js'
import type { JsonApi } from '../../src/http/json-api.js'

const GATEWAY_ID = '12D3KooWGsBbWvM9uYU8Yj8w6M12KxSt7SgymfCDikk7BE3bVBZ3'
const PEER_ID = 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'
const UNKNOWN_ID = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'
const GATEWAY_ADDRS = [`/ip4/11.0.113.1/udp/4001/udx/p2p/${GATEWAY_ID}`, `/ip4/11.0.113.1/tcp/4001/p2p/${GATEWAY_ID}`]

describe('gateway HTTP API', () => {
  const addressBook = new ObservedAddressBook()
  const registry = new Registry()
  const logger = createLogger({ level: 'silent' })
  let metrics: GatewayMetrics
  let api: HttpApi

  beforeAll(async () => {
    addressBook.record(PEER_ID, multiaddr('/ip4/11.0.113.7/udp/40001/udx'))
    metrics = new GatewayMetrics({ registry, reservations: () => 3, activeCircuits: () => 1, connectedPeers: () => addressBook.countConnected(), relayedBytes: () => 1500, forwardedCircuits: () => ({ 'in-loop': 0, worker: 0 }) })
    metrics.holePunchReported({ outcome: 'success', transport: 'udx', strategy: 'birthday', sockets: 256, probes: 300, durationMs: 420 })
    api = await startHttpApi({
      host: '127.0.0.1',
      port: 0,
      addressBook,
      registry,
      info: () => ({ peerId: GATEWAY_ID, addresses: GATEWAY_ADDRS }),
      logger
    })
  })

  afterAll(async () => {
    await api?.close()
  })

  async function get (path: string): Promise<{ status: number, type: string | null, body: any }> {
    const response = await fetch(new URL(path, api.url))
    const type = response.headers.get('content-type')
    return { status: response.status, type, body: type?.startsWith('application/json') === true ? await response.json() : await response.text() }
  }

  it('listens on the ephemeral port it was given', () => {
    expect(api.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(api.url).not.toBe('http://127.0.0.1:0')
  })

  it('GET /healthz', async () => {
    const { status, body } = await get('/healthz')
    expect(status).toBe(200)
    expect(body).toEqual({ status: 'ok', peerId: GATEWAY_ID, uptimeS: expect.any(Number) })
  })

  it('GET /metrics serves the registry as Prometheus text', async () => {
    const { status, type, body } = await get('/metrics')
    expect(status).toBe(200)
    expect(type).toBe(registry.contentType)
    expect(body).toContain('natmesh_relay_reservations 3')
    expect(body).toContain('natmesh_relay_active_circuits 1')
    expect(body).toContain('natmesh_relayed_bytes_total 1500')
    expect(body).toContain('natmesh_hole_punch_outcomes_total{outcome="success",transport="udx"} 1')
    expect(body).toContain('natmesh_hole_punch_outcomes_total{outcome="failure",transport="tcp"} 0')
    expect(body).toContain('natmesh_hole_punch_strategy_total{strategy="birthday",outcome="success"} 1')
    expect(body).toContain('natmesh_hole_punch_strategy_total{strategy="skip",outcome="skipped"} 0')
    expect(body).toContain('natmesh_hole_punch_sockets_total{strategy="birthday"} 256')
    expect(body).toContain('natmesh_hole_punch_probes_total{strategy="birthday"} 300')
    expect(body).toContain('natmesh_hole_punch_duration_seconds_bucket{le="0.5",strategy="birthday",outcome="success"} 1')
    expect(body).toContain('natmesh_hole_punch_duration_seconds_bucket{le="0.25",strategy="birthday",outcome="success"} 0')
    expect(body).toContain('natmesh_connected_peers{transport="udx"} 1')
    expect(body).toContain('natmesh_connected_peers{transport="tcp"} 0')
  })

  it('GET /api/v1/info', async () => {
    expect(await get('/api/v1/info')).toMatchObject({ status: 200, body: { peerId: GATEWAY_ID, addresses: GATEWAY_ADDRS } })
  })

  it('GET /api/v1/peers lists the address book', async () => {
    const { status, body } = await get('/api/v1/peers')
    expect(status).toBe(200)
    expect(body).toEqual([{
      peerId: PEER_ID,
      connected: true,
      addresses: [{
        transport: 'udx',
        ip: '11.0.113.7',
        port: 40001,
        multiaddr: '/ip4/11.0.113.7/udp/40001/udx',
        firstSeen: expect.any(String),
        lastSeen: expect.any(String)
      }]
    }])
  })

  it('GET /api/v1/peers/:peerId returns one entry', async () => {
    const { status, body } = await get(`/api/v1/peers/${PEER_ID}`)
    expect(status).toBe(200)
    expect(body).toEqual(addressBook.get(PEER_ID))
  })

  it('404s an unknown peer and 400s a malformed peer id, as JSON', async () => {
    expect(await get(`/api/v1/peers/${UNKNOWN_ID}`)).toMatchObject({ status: 404, type: expect.stringMatching(/^application\/json/), body: { error: 'unknown peer' } })
    expect(await get('/api/v1/peers/not-a-peer-id')).toMatchObject({ status: 400, type: expect.stringMatching(/^application\/json/), body: { error: 'malformed peer id' } })
  })

  it('answers unknown routes and methods with JSON 404s', async () => {
    expect(await get('/nope')).toMatchObject({ status: 404, body: { error: 'not found' } })

    const response = await fetch(new URL('/api/v1/peers', api.url), { method: 'DELETE' })
    expect(response.status).toBe(404)
    expect(await response.json()).toEqual({ error: 'not found' })
  })

  it('answers a broken request with a JSON error, not HTML', async () => {
    const response = await fetch(new URL('/api/v1/peers/%E0%A4%A', api.url))
    expect(response.status).toBe(400)
    expect(response.headers.get('content-type')).toMatch(/^application\/json/)
    expect(await response.json()).toEqual({ error: "'/api/v1/peers/%E0%A4%A' is not a valid url component" })
  })

  it('refuses a port that is in use with a clear error', async () => {
    const port = Number(new URL(api.url).port)
    await expect(startHttpApi({ host: '127.0.0.1', port, addressBook, registry, info: () => ({ peerId: GATEWAY_ID, addresses: [] }), logger }))
      .rejects.toThrow(`HTTP API cannot listen on 127.0.0.1:${port}: the port is already in use`)
  })
})

describe('JSON API on a unix socket (the peer\'s control socket)', () => {
  const logger = createLogger({ level: 'silent' })
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'natmesh-sock-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  const start = async (path: string): Promise<JsonApi> => startJsonApi({ path, logger, peerId: () => GATEWAY_ID, routes: () => {} })

  it('is readable and writable by its owner only, replaces a stale socket, refuses a live one and a path too long', async () => {
    const path = join(dir, 'peer.sock')
    // a socket file whose server is gone, as a killed daemon leaves it (a closed server removes its file)
    const holder = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`], { stdio: ['ignore', 'pipe', 'inherit'] })
    await once(holder.stdout, 'data')
    holder.kill('SIGKILL')
    await once(holder, 'exit')
    expect((await stat(path)).isSocket()).toBe(true)
    await writeFile(join(dir, 'not-a-socket'), '')

    const api = await start(path)
    try {
      expect(api.url).toBe(`unix:${path}`)
      expect((await stat(path)).mode & 0o777).toBe(0o600)
      const health = await new Promise<string>((resolve, reject) => {
        request({ socketPath: path, path: '/healthz' }, (res) => { res.setEncoding('utf8').on('data', resolve) }).on('error', reject).end()
      })
      expect(JSON.parse(health)).toMatchObject({ status: 'ok', peerId: GATEWAY_ID })
      await expect(start(path)).rejects.toThrow(`HTTP API cannot listen on ${path}: a running daemon is serving this socket`)
    } finally {
      await api.close()
    }
    await expect(stat(path)).rejects.toThrow(/ENOENT/)
    await expect(start(join(dir, 'not-a-socket'))).rejects.toThrow('exists and is not a socket')
    await expect(start(join(dir, 'x'.repeat(120)))).rejects.toThrow('a unix socket path has at most 107 bytes')
  })
})
