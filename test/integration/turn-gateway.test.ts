import { spawn } from 'node:child_process'
import { createHmac } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { Registry } from 'prom-client'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadGatewayConfig } from '../../src/config/index.js'
import { turnConfigSchema } from '../../src/config/turn.js'
import { createGateway } from '../../src/gateway/gateway.js'
import type { Gateway } from '../../src/gateway/gateway.js'
import { mintTurnCredential } from '../../src/turn/coturn/credentials.js'
import { freeTcpPort } from '../../src/turn/coturn/coturn-admin.js'
import { writeCoturnConfig } from '../../src/turn/coturn/coturn-config.js'
import { TurnUnavailableError } from '../../src/turn/coturn/supervisor.js'
import { TurnService } from '../../src/turn/coturn/turn-service.js'
import { loadOrCreateIdentity } from '../../src/core/identity.js'
import type { IceServer } from '../../src/ice-servers/types.js'
import { createLogger } from '../../src/core/logging.js'
import { fetchIceServers } from '../../src/ice-servers/client.js'
import { probeTurnAllocation, TurnAllocationError } from '../../src/turn/client/allocate.js'
import { answersStunBinding } from '../../src/stun/client.js'
import type { TurnEndpoint } from '../../src/turn/client/allocate.js'
import { freeUdpTcpPort } from '../helpers/free-port.js'
import { waitFor } from '../helpers/wait-for.js'
import type { Libp2p } from '@libp2p/interface'

const TOKEN = 'test-token-0123456789abcdef'
const RATE_LIMIT = 8
const RELAY_PORTS = { min: 50200, max: 50299 }
/** loopback answers in well under a millisecond; this only bounds a lost datagram, never a speed claim */
const PROBE = { rtoMs: 200, retransmissions: 3 }

describe('gateway TURN (real coturn on 127.0.0.1)', () => {
  let dir: string
  let gateway: Gateway
  let turnPort: number
  const clients: Libp2p[] = []

  async function startGateway (yaml: string): Promise<Gateway> {
    const file = join(dir, `gateway-${Math.random().toString(36).slice(2)}.yaml`)
    await writeFile(file, yaml)
    const config = await loadGatewayConfig({
      file,
      env: {},
      flags: { host: '127.0.0.1', udpPort: 0, tcpPort: 0, api: '127.0.0.1:0', stunPort: 0, stunOtherPort: 0, identityFile: join(dir, 'gateway.key') }
    })
    const identity = await loadOrCreateIdentity(config.identityFile)
    const started = await createGateway(config, { privateKey: identity.privateKey, logger: createLogger({ level: 'silent' }), registry: new Registry() })
    await started.start()
    return started
  }

  async function client (): Promise<Libp2p> {
    const node = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
    clients.push(node)
    const tcpAddr = gateway.node.getMultiaddrs().find(ma => ma.toString().includes('/tcp/'))
    if (tcpAddr == null) throw new Error('gateway has no TCP address')
    await node.dial(multiaddr(tcpAddr.toString()))
    return node
  }

  function turnEntry (servers: IceServer[]): TurnEndpoint {
    const entry = servers.find(server => server.urls.some(url => url.startsWith('turn:')))
    if (entry?.username == null || entry.credential == null) throw new Error(`no TURN entry in ${JSON.stringify(servers)}`)
    return { host: '127.0.0.1', port: turnPort, username: entry.username, credential: entry.credential }
  }

  async function iceApi (path: string, token?: string): Promise<{ status: number, body: any }> {
    const response = await fetch(new URL(path, gateway.apiUrl), { headers: token == null ? {} : { authorization: `Bearer ${token}` } })
    return { status: response.status, body: await response.json() }
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'natmesh-turn-'))
    turnPort = await freeUdpTcpPort()
    gateway = await startGateway(`
turn:
  enabled: true
  required: true
  port: ${turnPort}
  stateDir: ${join(dir, 'turn')}
  secretFile: ${join(dir, 'turn-secret')}
  ttlSeconds: 600
  relayPortRange: { min: ${RELAY_PORTS.min}, max: ${RELAY_PORTS.max} }
  restartDelayMs: { initial: 100, max: 1000 }
iceServers:
  apiToken: ${TOKEN}
  rateLimit: { max: ${RATE_LIMIT}, windowMs: 60000 }
  publicStunUrls: ['stun:stun.example.net:3478']
`)
  })

  afterAll(async () => {
    await Promise.all(clients.map(async node => { await node.stop() }))
    await gateway?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('writes coturn a config only its owner can read, and keeps the generated secret in a 0600 file', async () => {
    const config = join(dir, 'turn', 'turnserver.conf')
    expect((await stat(config)).mode & 0o777).toBe(0o600)
    expect((await stat(join(dir, 'turn-secret'))).mode & 0o777).toBe(0o600)
    const text = await readFile(config, 'utf8')
    const secret = (await readFile(join(dir, 'turn-secret'), 'utf8')).trim()
    expect(text).toContain(`static-auth-secret=${secret}`)
    expect(text).toMatch(/^use-auth-secret$/m)
    // the admin CLI, through which the gateway ends allocations of expired credentials: loopback, with a password
    expect(text).toMatch(/^cli-ip=127\.0\.0\.1$/m)
    expect(text).toMatch(/^cli-password=[0-9a-f]{48}$/m)
    expect(text).toMatch(/^denied-peer-ip=10\.0\.0\.0-10\.255\.255\.255$/m)
  })

  it('hands a peer, over libp2p, its own STUN first, its own TURN with a credential in the peer\'s id, public STUN last', async () => {
    const node = await client()
    const before = Math.floor(Date.now() / 1000)
    const { iceServers, ttl } = await fetchIceServers(node, gateway.node.peerId)

    expect(ttl).toBe(600)
    expect(iceServers.map(server => server.urls)).toEqual([
      [`stun:127.0.0.1:${String(gateway.stun?.addresses()[0]?.port)}`],
      [`turn:127.0.0.1:${turnPort}?transport=udp`, `turn:127.0.0.1:${turnPort}?transport=tcp`],
      ['stun:stun.example.net:3478']
    ])
    const [expiry, identity] = (iceServers[1]?.username ?? '').split(':')
    expect(identity).toBe(node.peerId.toString())
    expect(Number(expiry)).toBeGreaterThanOrEqual(before + 600)
    expect(Number(expiry)).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 600)
  })

  it('binds each credential to the dialer\'s own peer id', async () => {
    const [a, b] = [await client(), await client()]
    const usernames = await Promise.all([a, b].map(async node => turnEntry((await fetchIceServers(node, gateway.node.peerId)).iceServers).username))
    expect(usernames[0]?.endsWith(`:${a.peerId.toString()}`)).toBe(true)
    expect(usernames[1]?.endsWith(`:${b.peerId.toString()}`)).toBe(true)
  })

  it('coturn started by the gateway allocates a relayed address for a fresh credential', async () => {
    const node = await client()
    const endpoint = turnEntry((await fetchIceServers(node, gateway.node.peerId)).iceServers)
    const { relayedAddress, latencyMs } = await probeTurnAllocation(endpoint, PROBE)

    expect(relayedAddress.address).toBe('127.0.0.1')
    expect(relayedAddress.port).toBeGreaterThanOrEqual(RELAY_PORTS.min)
    expect(relayedAddress.port).toBeLessThanOrEqual(RELAY_PORTS.max)
    expect(latencyMs).toBeGreaterThan(0)
  })

  it('coturn refuses expired, forged and tampered credentials with 401', async () => {
    const secret = (await readFile(join(dir, 'turn-secret'), 'utf8')).trim()
    const identity = '12D3KooWGsBbWvM9uYU8Yj8w6M12KxSt7SgymfCDikk7BE3bVBZ3'
    const fresh = mintTurnCredential({ secret, identity, ttlSeconds: 600 })
    const expired = mintTurnCredential({ secret, identity, ttlSeconds: 600, now: Date.now() - 3600_000 })
    const forged = mintTurnCredential({ secret: 'not-the-gateway-secret-at-all', identity, ttlSeconds: 600 })
    const extended = `${fresh.expiresAt + 86_400}:${identity}`

    const attempts: Array<Pick<TurnEndpoint, 'username' | 'credential'>> = [
      expired,
      forged,
      { username: extended, credential: fresh.credential },
      { username: fresh.username, credential: createHmac('sha1', secret).update(extended).digest('hex') }
    ]
    for (const attempt of attempts) {
      const err = await probeTurnAllocation({ host: '127.0.0.1', port: turnPort, ...attempt }, PROBE).catch((err: unknown) => err)
      expect(err, attempt.username).toBeInstanceOf(TurnAllocationError)
      expect((err as TurnAllocationError).code).toBe(401)
    }

    // the same secret, minted correctly, is accepted: the refusals above are about the credentials alone
    await expect(probeTurnAllocation({ host: '127.0.0.1', port: turnPort, ...fresh }, PROBE)).resolves.toHaveProperty('relayedAddress')
  })

  it('GET /api/v1/ice/servers refuses a missing or wrong bearer token, serves the right one, then rate-limits the client', async () => {
    const missing = await iceApi('/api/v1/ice/servers')
    expect(missing).toEqual({ status: 401, body: { error: 'missing bearer token' } })
    const wrong = await iceApi('/api/v1/ice/servers', `${TOKEN}x`)
    expect(wrong).toEqual({ status: 401, body: { error: 'wrong bearer token' } })

    const served = await iceApi('/api/v1/ice/servers', TOKEN)
    expect(served.status).toBe(200)
    expect(served.body.ttl).toBe(600)
    expect(turnEntry(served.body.iceServers).username).toMatch(/^\d+:http-api$/)
    await expect(probeTurnAllocation(turnEntry(served.body.iceServers), PROBE)).resolves.toHaveProperty('relayedAddress')

    const peerId = '12D3KooWRBy97UB99e3J6hiPesre1MZeuNQvfan4gBziswrRJsNK'
    const named = await iceApi(`/api/v1/ice/servers?peerId=${peerId}`, TOKEN)
    expect(turnEntry(named.body.iceServers).username.endsWith(`:${peerId}`)).toBe(true)
    expect((await iceApi('/api/v1/ice/servers?peerId=nope', TOKEN)).status).toBe(400)

    // five requests so far, refused ones included; the limit is per client IP and window
    const statuses: number[] = []
    for (let i = 5; i <= RATE_LIMIT + 2; i++) statuses.push((await iceApi('/api/v1/ice/servers', TOKEN)).status)
    expect(statuses).toEqual([...Array(RATE_LIMIT - 5).fill(200), 429, 429, 429])
    // the limit applies before the token check, so guessing tokens is limited too
    expect((await iceApi('/api/v1/ice/servers', 'guess')).status).toBe(429)
  })

  it('restarts coturn when it dies, and the new one accepts credentials again', async () => {
    const turn = gateway.turn
    const before = turn?.pid
    expect(before).toBeTypeOf('number')
    process.kill(before as number, 'SIGKILL')

    const after = await waitFor(() => turn?.pid !== before && turn?.pid, 10_000, 'coturn to be restarted')
    expect(turn?.restarts).toBe(1)
    const node = await client()
    const endpoint = turnEntry((await fetchIceServers(node, gateway.node.peerId)).iceServers)
    // the restarted coturn may still be opening its sockets: a few retransmissions cover that
    await expect(probeTurnAllocation(endpoint, { rtoMs: 200, retransmissions: 5 })).resolves.toHaveProperty('relayedAddress')
    expect(turn?.pid).toBe(after)

    const metrics = await (await fetch(new URL('/metrics', gateway.apiUrl))).text()
    expect(metrics).toMatch(/^natmesh_turn_up 1$/m)
    expect(metrics).toMatch(/^natmesh_turn_restarts_total 1$/m)
  })
})

describe('gateway TURN start-up', () => {
  it('stops a coturn an earlier, killed gateway left running on the same state directory', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'natmesh-leftover-'))
    const config = turnConfigSchema.parse({ enabled: true, required: true, port: await freeUdpTcpPort(), stateDir: join(dir, 'turn'), secretFile: join(dir, 'secret'), relayPortRange: { min: 50450, max: 50499 } })
    const turn = new TurnService({ config, gatewayHost: '127.0.0.1', announce: [], logger: createLogger({ level: 'silent' }) })
    // the orphan: coturn on the config the gateway writes, with nobody supervising it
    const cli = { host: '127.0.0.1', port: await freeTcpPort('127.0.0.1'), password: 'the-earlier-runs-cli-password' }
    const { configFile } = await writeCoturnConfig({ ...config, listenIp: '127.0.0.1', secret: 'a-secret-of-the-earlier-run', stateDir: config.stateDir, cli })
    const orphan = spawn('turnserver', ['-c', configFile], { stdio: 'ignore' })
    const orphanExit = once(orphan, 'exit')

    try {
      await waitFor(async () => answersStunBinding('127.0.0.1', config.port, { rtoMs: 100, retransmissions: 0 }), 10_000, 'the orphan coturn to answer')
      await turn.start()
      await orphanExit
      expect(turn.pid).toBeTypeOf('number')
      expect(turn.pid).not.toBe(orphan.pid)
      // the new coturn has the new secret: its credentials work
      await expect(probeTurnAllocation({ host: '127.0.0.1', port: config.port, ...turn.credentialFor('x') }, PROBE)).resolves.toHaveProperty('relayedAddress')
    } finally {
      orphan.kill('SIGKILL')
      await turn.stop()
      await rm(dir, { recursive: true, force: true })
    }
  })


  it('runs without TURN and says why, unless TURN is required', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'natmesh-noturn-'))
    const yaml = join(dir, 'gateway.yaml')
    const flags = { host: '127.0.0.1', udpPort: 0, tcpPort: 0, api: '127.0.0.1:0', stunPort: 0, stunOtherPort: 0, identityFile: join(dir, 'gateway.key') }
    const turnSection = (required: boolean): string => `turn: { enabled: true, required: ${required}, binary: ${join(dir, 'no-such-turnserver')}, stateDir: ${join(dir, 'turn')}, secretFile: ${join(dir, 'secret')} }\n`
    const identity = await loadOrCreateIdentity(flags.identityFile)
    const make = async (required: boolean): Promise<Gateway> => {
      await writeFile(yaml, turnSection(required))
      const config = await loadGatewayConfig({ file: yaml, env: {}, flags })
      return createGateway(config, { privateKey: identity.privateKey, logger: createLogger({ level: 'silent' }), registry: new Registry() })
    }

    try {
      const tolerant = await make(false)
      await tolerant.start()
      expect(tolerant.turn?.available).toBe(false)
      expect(tolerant.turn?.unavailableReason).toContain('not found: install the coturn package')
      expect(tolerant.iceServers.serversFor('x').iceServers).toEqual([{ urls: [`stun:127.0.0.1:${String(tolerant.stun?.addresses()[0]?.port)}`] }])
      await tolerant.stop()

      const strict = await make(true)
      await expect(strict.start()).rejects.toBeInstanceOf(TurnUnavailableError)
      expect(strict.node.status).toBe('stopped')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
