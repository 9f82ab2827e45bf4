import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { IceServerPool, parseIceUrl, rtcConfiguration } from '../../src/ice-servers/pool.js'
import type { IceServersResponse, RankedServer } from '../../src/ice-servers/pool.js'
import { pairType } from '../../src/ice/selected-pair.js'
import { waitFor } from '../helpers/wait-for.js'
import '../../src/transport/index.js' // registers /udx

const log = defaultLogger().forComponent('test:ice-server-pool')
const GW1_IP = '11.0.113.10'
const GW2_IP = '11.0.113.11'

describe('ICE server pool', () => {
  let gw1: PeerId
  let gw2: PeerId
  const pools: IceServerPool[] = []

  beforeAll(async () => {
    gw1 = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    gw2 = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  })

  afterEach(() => {
    for (const pool of pools.splice(0)) pool.stop()
  })

  /** what a natmesh gateway hands out: own STUN, own TURN (UDP and TCP), public STUN */
  const gatewayAnswer = (ip: string, ttl = 3600): IceServersResponse => ({
    iceServers: [
      { urls: [`stun:${ip}:3478`] },
      { urls: [`turn:${ip}:3480?transport=udp`, `turn:${ip}:3480?transport=tcp`], username: '1800000000:peer', credential: 'c2VjcmV0' },
      { urls: ['stun:stun.example.org:19302'] }
    ],
    ttl
  })

  function pool (init: Partial<ConstructorParameters<typeof IceServerPool>[0]> = {}): IceServerPool {
    const p = new IceServerPool({
      staticServers: [],
      gatewayAddresses: gateway => [multiaddr(`/ip4/${gateway.equals(gw1) ? GW1_IP : GW2_IP}/udp/4001/udx/p2p/${gateway.toString()}`)],
      log,
      ...init
    })
    pools.push(p)
    return p
  }

  const urls = (servers: RankedServer[]): string[] => servers.map(s => `${s.source} ${s.url}`)

  it('ranks own-gateway STUN > public STUN > own TURN > public TURN, and drops what libjuice cannot use', async () => {
    const p = pool({
      fetch: async () => gatewayAnswer(GW1_IP),
      staticServers: [{ urls: ['turn:turn.example.org:3478'], username: 'u', credential: 'p' }, { urls: ['stun:stun.other.org'] }, { urls: ['turns:turn.example.org:5349'], username: 'u', credential: 'p' }]
    })
    p.watch(gw1)
    await waitFor(() => p.ranked().length > 0, 2000)
    expect(urls(p.ranked())).toEqual([
      `own-stun stun:${GW1_IP}:3478`,
      'public-stun stun:stun.example.org:19302',
      'public-stun stun:stun.other.org',
      `own-turn turn:${GW1_IP}:3480?transport=udp`,
      'public-turn turn:turn.example.org:3478'
    ])
    expect(p.ranked().find(s => s.source === 'own-turn')).toMatchObject({ username: '1800000000:peer', credential: 'c2VjcmV0', gateway: gw1.toString() })
  })

  it('gives one ICE attempt the best STUN server alone and up to two TURN servers of the best kind, per policy', async () => {
    const answers = new Map([[gw1.toString(), gatewayAnswer(GW1_IP)], [gw2.toString(), gatewayAnswer(GW2_IP)]])
    const p = pool({
      fetch: async gateway => answers.get(gateway.toString()) ?? Promise.reject(new Error('unknown gateway')),
      staticServers: [{ urls: ['turn:turn.example.org:3478'], username: 'u', credential: 'p' }]
    })
    p.watch(gw1)
    p.watch(gw2)
    await waitFor(() => p.ranked().filter(s => s.source === 'own-turn').length === 2, 2000)
    expect(urls(p.select({ stun: true, turn: false }))).toEqual([`own-stun stun:${GW1_IP}:3478`])
    expect(urls(p.select({ stun: true, turn: true }))).toEqual([`own-stun stun:${GW1_IP}:3478`, `own-turn turn:${GW1_IP}:3480?transport=udp`, `own-turn turn:${GW2_IP}:3480?transport=udp`])
    expect(urls(p.select({ stun: false, turn: true }))).toEqual([`own-turn turn:${GW1_IP}:3480?transport=udp`, `own-turn turn:${GW2_IP}:3480?transport=udp`])
  })

  it('falls back to public servers when no gateway gave any, and knows when there is no TURN at all', () => {
    const p = pool({ staticServers: [{ urls: ['stun:stun.example.org'] }, { urls: ['turn:turn.example.org'], username: 'u', credential: 'p' }] })
    expect(urls(p.select({ stun: true, turn: true }))).toEqual(['public-stun stun:stun.example.org', 'public-turn turn:turn.example.org'])
    expect(p.hasTurn()).toBe(true)
    expect(pool({ staticServers: [{ urls: ['stun:stun.example.org'] }] }).hasTurn()).toBe(false)
    // TURN without credentials cannot allocate
    expect(pool({ staticServers: [{ urls: ['turn:turn.example.org'] }] }).hasTurn()).toBe(false)
  })

  it('puts healthy TURN servers first (own before public, then the fastest), unhealthy ones last', async () => {
    const health: Record<string, { healthy: boolean, latencyMs?: number }> = {
      'own1.example:3478': { healthy: false },
      'own2.example:3478': { healthy: true, latencyMs: 40 },
      'own3.example:3478': { healthy: true, latencyMs: 10 },
      'pub1.example:3478': { healthy: true, latencyMs: 1 }
    }
    const turn = (host: string): { urls: string[], username: string, credential: string } => ({ urls: [`turn:${host}`], username: 'u', credential: 'p' })
    const ownHosts = ['own1.example', 'own2.example', 'own3.example']
    const p = pool({
      fetch: async () => ({ iceServers: ownHosts.map(turn), ttl: 60 }),
      gatewayAddresses: () => ownHosts.map(host => multiaddr(`/dns4/${host}/udp/4001/udx`)),
      staticServers: ['pub1.example', 'pub2.example'].map(turn),
      turnHealth: address => health[address]
    })
    p.watch(gw1)
    await waitFor(() => p.ranked().length === 5, 2000)
    expect(urls(p.ranked())).toEqual([
      'own-turn turn:own3.example', // healthy, own, 10 ms
      'own-turn turn:own2.example', // healthy, own, 40 ms
      'public-turn turn:pub1.example', // healthy but public
      'public-turn turn:pub2.example', // not checked yet
      'own-turn turn:own1.example' // unhealthy: a last resort
    ])
    expect(urls(p.select({ stun: false, turn: true }))).toEqual(['own-turn turn:own3.example', 'own-turn turn:own2.example'])
  })

  it('refreshes a gateway\'s servers before their TTL runs out, and retries a failed fetch with backoff', async () => {
    const fetched: number[] = []
    let fail = true
    const p = pool({
      fetch: async () => {
        fetched.push(Date.now())
        if (fail) {
          fail = false
          throw new Error('gateway busy')
        }
        return gatewayAnswer(GW1_IP, 1)
      }
    })
    p.watch(gw1)
    p.watch(gw1) // a second reservation event does not start a second refresh loop
    // first fetch fails, the retry (after 2 s) succeeds, then a refresh at 80 % of the 1 s TTL
    await waitFor(() => fetched.length >= 3, 6000)
    expect(fetched[1]! - fetched[0]!).toBeGreaterThanOrEqual(1900)
    expect(fetched[2]! - fetched[1]!).toBeGreaterThanOrEqual(700)
    expect(p.ranked().some(s => s.source === 'own-turn')).toBe(true)
  }, 10_000)

  it('stops refreshing when stopped', async () => {
    let calls = 0
    const p = pool({ fetch: async () => { calls++; return gatewayAnswer(GW1_IP, 1) } })
    p.watch(gw1)
    await waitFor(() => calls === 1, 2000)
    p.stop()
    await new Promise(resolve => setTimeout(resolve, 1200))
    expect(calls).toBe(1)
  })

  it('forgets servers whose credentials expired', async () => {
    const p = pool({ fetch: async () => ({ ...gatewayAnswer(GW1_IP), ttl: 1 }) })
    p.watch(gw1)
    await waitFor(() => p.ranked().length > 0, 2000)
    p.stop() // no refresh: the servers must lapse
    await new Promise(resolve => setTimeout(resolve, 1100))
    expect(p.ranked()).toEqual([])
  })
})

describe('ICE URLs and configuration', () => {
  it('parses STUN and TURN URLs and rejects anything else', () => {
    expect(parseIceUrl('stun:11.0.113.10:3478')).toEqual({ scheme: 'stun', host: '11.0.113.10', port: 3478, transport: undefined })
    expect(parseIceUrl('turn:[2001:db8::1]:3480?transport=udp')).toEqual({ scheme: 'turn', host: '2001:db8::1', port: 3480, transport: 'udp' })
    expect(parseIceUrl('turn:turn.example.org')).toEqual({ scheme: 'turn', host: 'turn.example.org', port: undefined, transport: undefined })
    for (const bad of ['', 'http://x', 'stun:', 'stun:host:99999', 'stun:host:0', 'turn:user@host', 'stun:host:1/path', 'turn:host?transport=sctp']) {
      expect(parseIceUrl(bad), bad).toBeUndefined()
    }
  })

  it('percent-encodes TURN credentials (natmesh usernames have a colon; node-datachannel puts them in the URL)', () => {
    const config = rtcConfiguration([
      { url: 'stun:11.0.113.10:3478', source: 'own-stun' },
      { url: 'turn:11.0.113.10:3480', source: 'own-turn', username: '1800000000:12D3KooW', credential: 'a+b/c=' }
    ], true)
    expect(config).toEqual({
      iceServers: [{ urls: ['stun:11.0.113.10:3478'] }, { urls: ['turn:11.0.113.10:3480'], username: '1800000000%3A12D3KooW', credential: 'a%2Bb%2Fc%3D' }],
      iceTransportPolicy: 'relay'
    })
  })

  it('names a candidate pair by its least direct end', () => {
    expect(pairType('host', 'host')).toBe('host')
    expect(pairType('host', 'srflx')).toBe('srflx')
    expect(pairType('prflx', 'host')).toBe('srflx')
    expect(pairType('srflx', 'relay')).toBe('relay')
    expect(pairType('relay', 'host')).toBe('relay')
  })
})
