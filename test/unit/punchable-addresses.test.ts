import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { beforeAll, describe, expect, it } from 'vitest'
import { punchableAddresses } from '../../src/dcutr/dialable-addresses.js'
import '../../src/transport/index.js' // registers /udx

const bytes = (ma: string): Uint8Array => multiaddr(ma).bytes
const kept = (encoded: Uint8Array[], allowPrivate?: boolean, max?: number): string[] =>
  punchableAddresses(encoded, allowPrivate, max).map(({ ma }) => ma.toString())

describe('punchableAddresses', () => {
  let peer: PeerId
  let gateway: PeerId
  beforeAll(async () => {
    peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    gateway = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
  })

  it('keeps public UDP overlay addresses, with their endpoint, in the order offered', () => {
    const out = punchableAddresses([
      bytes('/ip4/8.8.8.8/udp/4001/udx'),
      bytes(`/ip4/1.2.3.4/udp/51820/udx/p2p/${peer.toString()}`),
      bytes('/ip6/2606:4700::1111/udp/443/udx')
    ])
    expect(out.map(({ ma }) => ma.toString())).toEqual([
      '/ip4/8.8.8.8/udp/4001/udx',
      `/ip4/1.2.3.4/udp/51820/udx/p2p/${peer.toString()}`,
      '/ip6/2606:4700::1111/udp/443/udx'
    ])
    expect(out.map(({ endpoint }) => endpoint)).toEqual([
      { host: '8.8.8.8', port: 4001, family: 4 },
      { host: '1.2.3.4', port: 51820, family: 4 },
      { host: '2606:4700::1111', port: 443, family: 6 }
    ])
  })

  it('drops private, loopback, link-local and CGNAT addresses unless private ones are allowed', () => {
    const privateAddrs = [
      '/ip4/127.0.0.1/udp/4001/udx',
      '/ip4/10.1.2.3/udp/4001/udx',
      '/ip4/192.168.1.20/udp/4001/udx',
      '/ip4/172.16.5.5/udp/4001/udx',
      '/ip4/100.64.0.7/udp/4001/udx',
      '/ip4/169.254.10.10/udp/4001/udx',
      '/ip6/::1/udp/4001/udx',
      '/ip6/fd00::5/udp/4001/udx'
    ]
    const encoded = [...privateAddrs.map(bytes), bytes('/ip4/8.8.4.4/udp/4001/udx')]
    expect(kept(encoded)).toEqual(['/ip4/8.8.4.4/udp/4001/udx'])
    expect(kept(encoded, false, 100)).toEqual(['/ip4/8.8.4.4/udp/4001/udx'])
    expect(kept(encoded, true, 100)).toEqual([...privateAddrs, '/ip4/8.8.4.4/udp/4001/udx'])
  })

  it('drops relayed addresses, even public ones over the UDP overlay', () => {
    const encoded = [
      bytes(`/ip4/8.8.8.8/udp/4001/udx/p2p/${gateway.toString()}/p2p-circuit/p2p/${peer.toString()}`),
      bytes(`/ip4/8.8.8.8/udp/4001/udx/p2p/${gateway.toString()}/p2p-circuit`),
      bytes('/ip4/8.8.8.8/udp/4001/udx/p2p-circuit'),
      bytes(`/p2p/${gateway.toString()}/p2p-circuit/p2p/${peer.toString()}`),
      bytes(`/ip4/127.0.0.1/udp/4001/udx/p2p/${gateway.toString()}/p2p-circuit/p2p/${peer.toString()}`)
    ]
    expect(kept(encoded)).toEqual([])
    expect(kept(encoded, true)).toEqual([])
  })

  it('drops other transports and anything that is not ip/udp/udx', () => {
    const encoded = [
      bytes('/ip4/8.8.8.8/tcp/4001'),
      bytes(`/ip4/8.8.8.8/tcp/4001/p2p/${peer.toString()}`),
      bytes('/ip4/8.8.8.8/udp/4001/quic-v1'),
      bytes('/ip4/8.8.8.8/udp/4001/webrtc-direct'),
      bytes('/ip4/8.8.8.8/udp/4001'),
      bytes('/dns4/example.com/udp/4001/udx'),
      bytes('/ip4/8.8.8.8/tcp/4001/udx'),
      bytes('/ip4/8.8.8.8/udp/4001/udx/udx'),
      bytes('/ip4/8.8.8.8')
    ]
    expect(kept(encoded, true)).toEqual([])
  })

  it('skips undecodable bytes without throwing and keeps what follows', () => {
    const good = bytes('/ip4/8.8.8.8/udp/4001/udx')
    const encoded = [
      new Uint8Array([0xff, 0xff, 0xff, 0xff]),
      good.subarray(0, good.byteLength - 3), // cut inside the address
      new Uint8Array([0x04, 8, 8]), // /ip4 with a 2-byte address
      Uint8Array.from({ length: 64 }, (_, i) => (i * 37 + 11) & 0xff),
      new Uint8Array(0),
      bytes('/ip4/1.1.1.1/udp/53/udx')
    ]
    expect(() => punchableAddresses(encoded)).not.toThrow()
    expect(kept(encoded)).toEqual(['/ip4/1.1.1.1/udp/53/udx'])
  })

  it('drops duplicates of one host and port, whatever else differs', () => {
    const encoded = [
      bytes('/ip4/8.8.8.8/udp/4001/udx'),
      bytes('/ip4/8.8.8.8/udp/4001/udx'),
      bytes(`/ip4/8.8.8.8/udp/4001/udx/p2p/${peer.toString()}`),
      bytes('/ip4/8.8.8.8/udp/4002/udx'),
      bytes('/ip4/8.8.4.4/udp/4001/udx')
    ]
    expect(kept(encoded)).toEqual(['/ip4/8.8.8.8/udp/4001/udx', '/ip4/8.8.8.8/udp/4002/udx', '/ip4/8.8.4.4/udp/4001/udx'])
  })

  it('caps the result at maxAddresses, default 8, counting only kept addresses', () => {
    const many = Array.from({ length: 20 }, (_, i) => bytes(`/ip4/8.8.8.${i + 1}/udp/4001/udx`))
    // rejected entries up front must not use up the budget
    const withJunk = [bytes('/ip4/10.0.0.1/udp/4001/udx'), new Uint8Array([0xff]), bytes('/ip4/8.8.8.8/tcp/1'), ...many]
    expect(kept(withJunk)).toHaveLength(8)
    expect(kept(withJunk)[0]).toBe('/ip4/8.8.8.1/udp/4001/udx')
    expect(kept(withJunk, false, 3)).toEqual(['/ip4/8.8.8.1/udp/4001/udx', '/ip4/8.8.8.2/udp/4001/udx', '/ip4/8.8.8.3/udp/4001/udx'])
    expect(kept(withJunk, false, 1)).toEqual(['/ip4/8.8.8.1/udp/4001/udx'])
    expect(kept(withJunk, false, 50)).toHaveLength(20)
    expect(kept([], false, 3)).toEqual([])
  })

  it('returns nothing when maxAddresses is 0', () => {
    expect(kept([bytes('/ip4/8.8.8.8/udp/4001/udx')], false, 0)).toEqual([])
  })
})
