/**
 * Noise first on the UDP overlay (src/transport/noise-first.ts): two real libp2p nodes on loopback, with a UDP
 * forwarder between them that records every datagram, so the test sees what crossed the wire. Agreed in
 * HELLO/ACCEPT, the connection starts with Noise: no multistream-select bytes ever cross. A listener that does not
 * agree (as natmesh before noise first) gets the usual negotiation, and the connection works either way.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { ping } from '@libp2p/ping'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { pingOver } from '../../src/core/ping-path.js'
import { decodeControlMessage, isControlMessage } from '../../src/transport/control-message.js'
import type { ControlMessage } from '../../src/transport/control-message.js'
import { toUdpEndpoint, UdxTransport } from '../../src/transport/index.js'
import type { UdxTransportComponents } from '../../src/transport/transport.js'
import { OverlaySocket } from '../../src/transport/overlay-socket.js'
import { defaultLogger } from '@libp2p/logger'
import { udpForwarder } from '../helpers/udp-forwarder.js'
import type { UdpForwarder } from '../helpers/udp-forwarder.js'

type Node = Libp2p<{ ping: unknown }>

const started: Array<{ stop: () => Promise<void> | void }> = []
afterEach(async () => {
  await Promise.all(started.splice(0).map(async s => { await s.stop() }))
})

async function node (onTransport?: (transport: UdxTransport) => void): Promise<Node> {
  const n: Node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/udp/0/udx'] },
    transports: [(components: UdxTransportComponents) => {
      const transport = new UdxTransport(components)
      onTransport?.(transport)
      return transport
    }],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { ping: ping() }
  })
  started.push(n)
  return n
}

async function recordingForwarder (target: number): Promise<UdpForwarder> {
  const forwarder = await udpForwarder(target)
  started.push({ stop: forwarder.close })
  return forwarder
}

function udpPort (n: Node): number {
  const ma = n.getMultiaddrs().find(a => toUdpEndpoint(a) != null)
  if (ma == null) throw new Error('node has no UDP overlay address')
  return (toUdpEndpoint(ma) as { port: number }).port
}

const controls = (datagrams: Array<{ data: Buffer }>): ControlMessage[] => datagrams.filter(d => isControlMessage(d.data)).map(d => decodeControlMessage(d.data))
const carries = (datagrams: Array<{ data: Buffer }>, text: string): boolean => datagrams.some(d => d.data.includes(Buffer.from(text)))

describe('noise first on the UDP overlay', () => {
  it('agrees in HELLO/ACCEPT and starts with Noise: no multistream-select for /noise on the wire, and the connection works', async () => {
    const listener = await node()
    const dialer = await node()
    const forwarder = await recordingForwarder(udpPort(listener))
    const connection = await dialer.dial(multiaddr(`/ip4/127.0.0.1/udp/${forwarder.port}/udx/p2p/${listener.peerId.toString()}`))
    expect(connection.encryption).toBe('/noise')
    expect(connection.multiplexer).toBe('/yamux/1.0.0')
    expect(await pingOver(connection)).toBeGreaterThanOrEqual(0)
    const [hello, accept] = controls(forwarder.datagrams)
    expect(hello).toMatchObject({ noiseFirst: true })
    expect(accept).toMatchObject({ noiseFirst: true })
    expect(carries(forwarder.datagrams, '/noise\n')).toBe(false)
    // nothing of multistream-select in the clear: the streams on the connection select theirs inside Noise
    expect(carries(forwarder.datagrams, '/multistream/1.0.0\n')).toBe(false)
  })

  it('negotiates /noise with multistream-select when the listener does not agree (natmesh before noise first)', async () => {
    let listenerTransport: UdxTransport | undefined
    const listener = await node((t) => { listenerTransport = t })
    const socket = (listenerTransport as UdxTransport).socket
    // what an older listener does: it ignores the offer
    socket.setInboundHandler(socket.inbound, false)
    const dialer = await node()
    const forwarder = await recordingForwarder(udpPort(listener))
    const connection = await dialer.dial(multiaddr(`/ip4/127.0.0.1/udp/${forwarder.port}/udx/p2p/${listener.peerId.toString()}`))
    expect(await pingOver(connection)).toBeGreaterThanOrEqual(0)
    const [hello, accept] = controls(forwarder.datagrams)
    expect(hello).toMatchObject({ noiseFirst: true })
    expect(accept).not.toHaveProperty('noiseFirst')
    expect(carries(forwarder.datagrams, '/noise\n')).toBe(true)
  })
})

describe('OverlaySocket: the noise-first agreement', () => {
  async function pair (acceptNoiseFirst: boolean): Promise<{ listener: OverlaySocket, dialer: OverlaySocket, inbound: Promise<boolean> }> {
    const make = (): OverlaySocket => {
      const socket = new OverlaySocket({ helloIntervalMs: 50, maxHelloIntervalMs: 1000, dialTimeoutMs: 5000, maxPendingInbound: 16, maxPendingInboundPerHost: 16, inboundSetupsPerHost: { ratePerSecond: 0, burst: 16 }, keepAliveMs: 5000, inboundKeepAlive: true, log: defaultLogger().forComponent('test') })
      started.push({ stop: async () => { await socket.close() } })
      return socket
    }
    const listener = make()
    const dialer = make()
    listener.bind('127.0.0.1', 0)
    const inbound = new Promise<boolean>(resolve => {
      listener.setInboundHandler((_stream, _remote, _first, noiseFirst) => { resolve(noiseFirst) }, acceptNoiseFirst)
    })
    return { listener, dialer, inbound }
  }

  for (const [offer, accept, agreed] of [[true, true, true], [true, false, false], [false, true, false]] as const) {
    it(`${offer ? 'offered' : 'not offered'} and ${accept ? 'accepted' : 'not accepted'}: both ends ${agreed ? 'start with Noise' : 'negotiate'}`, async () => {
      const { listener, dialer, inbound } = await pair(accept)
      const { stream, noiseFirst } = await dialer.dial(listener.address() as NonNullable<ReturnType<OverlaySocket['address']>>, AbortSignal.timeout(5000), offer)
      expect(noiseFirst).toBe(agreed)
      stream.write(Buffer.from('first bytes'))
      expect(await inbound).toBe(agreed)
    })
  }
})
