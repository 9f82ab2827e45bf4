/**
 * The birthday punch's moving parts over real sockets on loopback: extra overlay sockets that spray, a prober on
 * the main socket, the winning socket carrying a real libp2p connection, and everything else closed. There is no
 * NAT on loopback, so the prober is handed the port list; the lab tests (test/lab/symmetric.test.ts) do it for
 * real through nftables NATs.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { createLibp2p } from 'libp2p'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import type { Libp2p } from '@libp2p/interface'
import { UdxTransport, toUdxMultiaddr } from '../../src/transport/index.js'
import type { UdpEndpoint } from '../../src/transport/index.js'
import { BIRTHDAY_DEFAULTS, probe, spray } from '../../src/dcutr/birthday.js'
import type { BirthdayCost } from '../../src/dcutr/birthday.js'
import { waitFor } from '../helpers/wait-for.js'

interface Node { node: Libp2p, transport: UdxTransport, main: UdpEndpoint }

async function node (): Promise<Node> {
  let transport: UdxTransport | undefined
  const libp2p = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/udp/0/udx'] },
    transports: [(components) => { transport = new UdxTransport(components); return transport }],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()]
  })
  if (transport == null) throw new Error('transport not created')
  const main = transport.socket.address()
  if (main == null) throw new Error('main socket not bound')
  return { node: libp2p, transport, main }
}

const token = (): Uint8Array => crypto.getRandomValues(new Uint8Array(8))
const noCost = (): BirthdayCost => ({ sockets: 0, probes: 0, sprays: 0 })
const settings = { ...BIRTHDAY_DEFAULTS, sockets: 16, probesPerSecond: 2000 }

describe('birthday punch over real sockets', () => {
  const nodes: Node[] = []
  afterEach(async () => { await Promise.all(nodes.splice(0).map(async n => n.node.stop())) })

  it('the probe that reaches one sprayed socket wins; the others close at once; the winner carries a connection and closes with it', async () => {
    const sprayer = await node()
    const prober = await node()
    nodes.push(sprayer, prober)
    const attempt = token()
    const sprayCost = noCost()
    const probeCost = noCost()
    const signal = AbortSignal.timeout(5000)
    const sockets = sprayer.transport.openExtraSockets(settings.sockets)
    expect(sprayer.transport.extraSocketCount).toBe(settings.sockets)
    const hit = spray(sprayer.transport, sockets, prober.main, attempt, settings, signal, sprayCost)
    // the listening ports of the extra sockets: read from the sprays the prober's socket receives
    const seen = new Set<number>()
    const stopWatching = prober.transport.socket.onProbe(attempt, (remote) => { seen.add(remote.port) })
    await waitFor(() => seen.size === settings.sockets ? true : undefined, 3000, 'a spray from every socket')
    stopWatching()
    const target = [...seen][5] as number
    // 50 ports that are not the sprayer's, then one that is
    const misses = Array.from({ length: 50 }, (_, i) => 1100 + i).filter(p => !seen.has(p))
    const found = probe(prober.transport.socket, '127.0.0.1', 4, [...misses, target][Symbol.iterator](), attempt, settings, signal, probeCost)

    const [won, sprayerSeen] = await Promise.all([hit, found])
    expect(won.socket.address()?.port).toBe(target)
    expect(won.remote).toMatchObject({ host: '127.0.0.1', port: prober.main.port })
    expect(sprayerSeen).toMatchObject({ host: '127.0.0.1', port: target })
    expect(probeCost.probes).toBe(misses.length + 1)
    expect(sprayCost.sprays).toBeGreaterThanOrEqual(settings.sockets)
    // every loser closed
    await waitFor(() => sprayer.transport.extraSocketCount === 1 ? true : undefined, 2000, 'losers closed')

    // the winner dials from its own port: the prober sees the connection come from it
    const release = sprayer.transport.routeVia(won.remote, won.socket)
    const conn = await sprayer.node.dial(toUdxMultiaddr('127.0.0.1', prober.main.port).encapsulate(`/p2p/${prober.node.peerId.toString()}`))
    release()
    won.socket.closeWhenIdle()
    const inbound = await waitFor(() => prober.node.getConnections(sprayer.node.peerId)[0], 2000, 'the inbound connection')
    expect(inbound.remoteAddr.toString()).toContain(`/udp/${target}/udx`)
    expect(sprayer.transport.extraSocketCount).toBe(1)
    await conn.close()
    await waitFor(() => sprayer.transport.extraSocketCount === 0 ? true : undefined, 5000, 'the winner closed with its connection')
    expect(won.socket.closed).toBe(true)
  })

  it('an extra socket accepts connections too', async () => {
    const a = await node()
    const b = await node()
    nodes.push(a, b)
    const [extra] = a.transport.openExtraSockets(1)
    const port = extra?.address()?.port
    expect(port).toBeGreaterThan(0)
    expect(port).not.toBe(a.main.port)
    await b.node.dial(toUdxMultiaddr('127.0.0.1', port as number).encapsulate(`/p2p/${a.node.peerId.toString()}`))
    const inbound = await waitFor(() => a.node.getConnections(b.node.peerId)[0], 2000, 'the inbound connection on the extra socket')
    expect(inbound.direction).toBe('inbound')
  })

  it('an aborted spray closes every socket it was given; an unanswered prober stops at its probe limit', async () => {
    const a = await node()
    const b = await node()
    nodes.push(a, b)
    const controller = new AbortController()
    const cost = noCost()
    const sprayed = spray(a.transport, a.transport.openExtraSockets(settings.sockets), b.main, token(), settings, controller.signal, cost)
    expect(a.transport.extraSocketCount).toBe(settings.sockets)
    controller.abort()
    await expect(sprayed).rejects.toThrow(/no probe reached any of 16 sockets/)
    await waitFor(() => a.transport.extraSocketCount === 0 ? true : undefined, 2000, 'every socket closed')

    const probeCost = noCost()
    const limited = { ...settings, maxProbes: 30, probesPerSecond: 10_000 }
    // probes to ports nobody listens on: never answered
    const ports = Array.from({ length: 100 }, (_, i) => 1200 + i)[Symbol.iterator]()
    await expect(probe(b.transport.socket, '127.0.0.1', 4, ports, token(), limited, AbortSignal.timeout(400), probeCost)).rejects.toThrow(/no answer to 30 probes/)
    expect(probeCost.probes).toBe(30)
  })

  it('a probe with another attempt\'s token, or from an unexpected sender, is not a hit', async () => {
    const a = await node()
    const b = await node()
    const c = await node()
    nodes.push(a, b, c)
    const attempt = token()
    const cost = noCost()
    const sprayed = spray(a.transport, a.transport.openExtraSockets(1), b.main, attempt, settings, AbortSignal.timeout(600), cost)
    const port = await new Promise<number>(resolve => {
      const stop = b.transport.socket.onProbe(attempt, (remote) => { stop(); resolve(remote.port) })
    })
    // right token from the wrong node, wrong token from the right node
    c.transport.socket.sendProbe({ host: '127.0.0.1', port, family: 4 }, attempt, false)
    b.transport.socket.sendProbe({ host: '127.0.0.1', port, family: 4 }, token(), false)
    await expect(sprayed).rejects.toThrow(/no probe reached/)
  })
})
