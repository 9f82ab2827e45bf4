/**
 * The NAT type exchange before an ICE attempt, between two real libp2p nodes on loopback TCP: a well-behaved
 * exchange gives each side the other's type; a peer that answers garbage, too much, nothing, or does not speak the
 * protocol yields `unknown` (and so the conservative strategy) without breaking the asking side, and a garbage
 * question still gets an answer.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { defaultLogger } from '@libp2p/logger'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { createLibp2p } from 'libp2p'
import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import { afterEach, describe, expect, it } from 'vitest'
import { exchangeNatTypes, handleNatTypeExchange, NAT_TYPE_PROTOCOL } from '../../src/ice/nat-type-protocol.js'
import type { NatType } from '../../src/ice/strategy.js'

const log = defaultLogger().forComponent('test:nat-type-exchange')

describe('NAT type exchange', () => {
  const nodes: Libp2p[] = []

  afterEach(async () => {
    await Promise.all(nodes.splice(0).map(async node => node.stop()))
  })

  async function node (): Promise<Libp2p> {
    const n = await createLibp2p({
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      connectionGater: { denyDialMultiaddr: () => false }
    })
    nodes.push(n)
    return n
  }

  async function answering (natType: NatType): Promise<{ node: Libp2p, heard: Array<{ peer: PeerId, remote: NatType, own: NatType }> }> {
    const n = await node()
    const heard: Array<{ peer: PeerId, remote: NatType, own: NatType }> = []
    await handleNatTypeExchange(n, { natType: async () => natType, onRemote: (peer, remote, own) => { heard.push({ peer, remote, own }) }, log })
    return { node: n, heard }
  }

  /** a peer that answers the exchange with `reply` (raw bytes, length-prefixed) */
  async function misbehaving (reply: (stream: Stream) => Promise<void>): Promise<Libp2p> {
    const n = await node()
    await n.handle(NAT_TYPE_PROTOCOL, async (stream: Stream) => { await reply(stream) })
    return n
  }

  it('tells each side the other\'s NAT type', async () => {
    const b = await answering('symmetric')
    const a = await node()
    const connection = await a.dial(b.node.getMultiaddrs())
    expect(await exchangeNatTypes(connection, 'port-restricted-cone', log)).toBe('symmetric')
    expect(b.heard).toHaveLength(1)
    expect(b.heard[0]?.peer.equals(a.peerId)).toBe(true)
    expect(b.heard[0]).toMatchObject({ remote: 'port-restricted-cone', own: 'symmetric' })
  })

  it('takes a garbage, oversized, empty or missing answer (or none at all) as unknown', async () => {
    const a = await node()
    const replies: Array<(stream: Stream) => Promise<void>> = [
      async stream => { await lpStream(stream).read(); await lpStream(stream).write(new TextEncoder().encode('very-cone')); await stream.close() },
      async stream => { await lpStream(stream).read(); await lpStream(stream).write(new Uint8Array(10_000).fill(65)); await stream.close() },
      async stream => { await lpStream(stream).read(); await lpStream(stream).write(new Uint8Array([0xff, 0xfe, 0x00])); await stream.close() },
      async stream => { await stream.close() },
      async stream => { stream.abort(new Error('go away')) }
    ]
    for (const reply of replies) {
      const b = await misbehaving(reply)
      const connection = await a.dial(b.getMultiaddrs())
      expect(await exchangeNatTypes(connection, 'full-cone', log)).toBe('unknown')
    }
    // a peer without the protocol (another mode, an older version)
    const silent = await node()
    expect(await exchangeNatTypes(await a.dial(silent.getMultiaddrs()), 'full-cone', log)).toBe('unknown')
  })

  it('answers a garbage question with its own type and hears the asker as unknown; an oversized one is refused', async () => {
    const b = await answering('full-cone')
    const a = await node()
    const connection = await a.dial(b.node.getMultiaddrs())
    const stream = await connection.newStream(NAT_TYPE_PROTOCOL)
    const lp = lpStream(stream)
    await lp.write(new TextEncoder().encode('{"natType":"symmetric"}'))
    expect(new TextDecoder().decode((await lp.read()).subarray())).toBe('full-cone')
    expect(b.heard.map(h => h.remote)).toEqual(['unknown'])

    const big = await connection.newStream(NAT_TYPE_PROTOCOL)
    await lpStream(big).write(new Uint8Array(4096))
    await expect(lpStream(big).read()).rejects.toThrow()
    expect(b.heard).toHaveLength(1)
    // and it still answers the next well-formed exchange
    expect(await exchangeNatTypes(connection, 'no-nat', log)).toBe('full-cone')
  })
})
