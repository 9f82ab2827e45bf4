import { afterEach, describe, expect, it } from 'vitest'
import { createLibp2p } from 'libp2p'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import type { Libp2p } from '@libp2p/interface'
import { toUdpEndpoint, udxOverlay } from '../../src/transport/index.js'
import { waitFor } from '../helpers/wait-for.js'

async function node (port = 0, init: Parameters<typeof udxOverlay>[0] = {}): Promise<Libp2p<{ ping: ReturnType<ReturnType<typeof ping>> }>> {
  return createLibp2p({
    addresses: { listen: [`/ip4/127.0.0.1/udp/${port}/udx`] },
    transports: [udxOverlay(init)],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { ping: ping() }
  })
}

describe('UDP overlay transport', () => {
  const nodes: Libp2p[] = []
  afterEach(async () => { await Promise.all(nodes.splice(0).map(async n => n.stop())) })

  it('connects two nodes over one UDP socket each, with noise and yamux on top', async () => {
    const a = await node(); const b = await node()
    nodes.push(a, b)
    const addr = b.getMultiaddrs()[0]
    expect(addr?.toString()).toMatch(/^\/ip4\/127\.0\.0\.1\/udp\/\d+\/udx\/p2p\//)
    const rtt = await a.services.ping.ping(addr!)
    expect(rtt).toBeGreaterThanOrEqual(0)
    const conn = a.getConnections(b.peerId)[0]
    expect(conn?.remoteAddr.toString()).toContain('/udx')
    expect(conn?.encryption).toBe('/noise')
    expect(conn?.multiplexer).toBe('/yamux/1.0.0')
  })

  it('dials from the port it listens on, so the remote sees the listening port', async () => {
    const a = await node(); const b = await node()
    nodes.push(a, b)
    await a.dial(b.getMultiaddrs()[0]!)
    const aPort = toUdpEndpoint(a.getMultiaddrs()[0]!)?.port
    const inbound = await waitFor(() => b.getConnections(a.peerId)[0], 2000, 'the inbound connection on b')
    const seenByB = toUdpEndpoint(inbound.remoteAddr)?.port
    expect(seenByB).toBe(aPort)
  })

  it('fails a dial to a silent address with a clear timeout error', async () => {
    const a = await node(0, { dialTimeoutMs: 300 })
    nodes.push(a)
    // a bound UDP socket that never answers
    const dgram = await import('node:dgram')
    const silent = dgram.createSocket('udp4')
    await new Promise<void>(resolve => silent.bind(0, '127.0.0.1', resolve))
    const port = (silent.address()).port
    try {
      await expect(a.dial(multiaddr(`/ip4/127.0.0.1/udp/${port}/udx`))).rejects.toThrow(/no answer from 127\.0\.0\.1:\d+ over UDP within 300 ms/)
    } finally { silent.close() }
  })

  it('moves a megabyte both ways intact', async () => {
    const a = await node(); const b = await node()
    nodes.push(a, b)
    await b.handle('/echo/1.0.0', async (stream) => {
      for await (const chunk of stream) stream.send(chunk)
      await stream.close()
    })
    const stream = await a.dialProtocol(b.getMultiaddrs()[0]!, '/echo/1.0.0')
    const payload = crypto.getRandomValues(new Uint8Array(64 * 1024))
    const received: Uint8Array[] = []
    const reading = (async () => { for await (const chunk of stream) received.push(chunk.subarray()) })()
    for (let i = 0; i < 16; i++) {
      if (!stream.send(payload)) await new Promise(resolve => stream.addEventListener('drain', resolve, { once: true }))
    }
    await stream.close()
    await reading
    const total = received.reduce((n, c) => n + c.byteLength, 0)
    expect(total).toBe(16 * payload.byteLength)
    expect(Buffer.concat(received).subarray(0, payload.byteLength).equals(Buffer.from(payload))).toBe(true)
  })
})
