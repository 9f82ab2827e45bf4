import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { ObservedAddressBook, observeConnections } from '../../src/gateway/address-book.js'
import '../../src/transport/multiaddr.js' // registers the /udx protocol, as the gateway's transport does
import type { Connection, Libp2p } from '@libp2p/interface'

const ALICE = '12D3KooWGsBbWvM9uYU8Yj8w6M12KxSt7SgymfCDikk7BE3bVBZ3'
const BOB = 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'
const T0 = Date.parse('2026-11-01T00:00:00.000Z')
const MINUTE = 60_000

const udx = (ip: string, port: number): ReturnType<typeof multiaddr> => multiaddr(`/ip4/${ip}/udp/${port}/udx`)
const tcp = (ip: string, port: number): ReturnType<typeof multiaddr> => multiaddr(`/ip4/${ip}/tcp/${port}`)
const at = (ms: number): string => new Date(ms).toISOString()

describe('ObservedAddressBook', () => {
  it('records the public address per transport, first and last seen', () => {
    const book = new ObservedAddressBook()
    book.record(ALICE, udx('11.0.113.7', 40001), T0)
    book.record(ALICE, multiaddr(`/ip4/11.0.113.7/tcp/40002/p2p/${ALICE}`), T0 + MINUTE)

    expect(book.get(ALICE, T0 + MINUTE)).toEqual({
      peerId: ALICE,
      connected: true,
      addresses: [
        { transport: 'tcp', ip: '11.0.113.7', port: 40002, multiaddr: '/ip4/11.0.113.7/tcp/40002', firstSeen: at(T0 + MINUTE), lastSeen: at(T0 + MINUTE) },
        { transport: 'udx', ip: '11.0.113.7', port: 40001, multiaddr: '/ip4/11.0.113.7/udp/40001/udx', firstSeen: at(T0), lastSeen: at(T0) }
      ]
    })
  })

  it('keeps firstSeen and moves lastSeen when the same address is seen again', () => {
    const book = new ObservedAddressBook()
    book.record(ALICE, udx('11.0.113.7', 40001), T0)
    book.record(ALICE, udx('11.0.113.7', 40001), T0 + 5 * MINUTE)

    expect(book.get(ALICE, T0 + 5 * MINUTE)?.addresses).toEqual([
      expect.objectContaining({ port: 40001, firstSeen: at(T0), lastSeen: at(T0 + 5 * MINUTE) })
    ])
  })

  it('handles IPv6 observations', () => {
    const book = new ObservedAddressBook()
    book.record(ALICE, multiaddr('/ip6/2001:db8::7/udp/4001/udx'), T0)

    expect(book.get(ALICE, T0)?.addresses[0]).toMatchObject({ transport: 'udx', ip: '2001:db8::7', port: 4001, multiaddr: '/ip6/2001:db8::7/udp/4001/udx' })
  })

  it('is connected until the last connection closes', () => {
    const book = new ObservedAddressBook()
    book.record(ALICE, udx('11.0.113.7', 40001), T0)
    book.record(ALICE, udx('11.0.113.7', 40001), T0)
    book.disconnected(ALICE, udx('11.0.113.7', 40001), T0 + MINUTE)
    expect(book.get(ALICE, T0 + MINUTE)?.connected).toBe(true)

    book.disconnected(ALICE, udx('11.0.113.7', 40001), T0 + 2 * MINUTE)
    expect(book.get(ALICE, T0 + 2 * MINUTE)).toMatchObject({
      connected: false,
      addresses: [{ firstSeen: at(T0), lastSeen: at(T0 + 2 * MINUTE) }]
    })
  })

  it('ignores relayed and non-IP addresses', () => {
    const book = new ObservedAddressBook()
    book.record(ALICE, multiaddr(`/ip4/11.0.113.1/tcp/4001/p2p/${BOB}/p2p-circuit`), T0)
    book.record(ALICE, multiaddr(`/ip4/11.0.113.1/udp/4001/udx/p2p/${BOB}/p2p-circuit/p2p/${ALICE}`), T0)
    book.record(ALICE, multiaddr('/dns4/example.com/tcp/4001'), T0)
    book.record(ALICE, multiaddr('/ip4/11.0.113.1/udp/4001/quic-v1'), T0)

    expect(book.get(ALICE, T0)).toBeUndefined()
    expect(book.list(T0)).toEqual([])
  })

  it('forgets disconnected addresses after the TTL, but never open ones', () => {
    const book = new ObservedAddressBook({ disconnectedTtlMs: 10 * MINUTE })
    book.record(ALICE, udx('11.0.113.7', 40001), T0)
    book.disconnected(ALICE, udx('11.0.113.7', 40001), T0)
    book.record(BOB, tcp('11.0.113.8', 50001), T0)
    book.record(BOB, tcp('11.0.113.8', 50002), T0)
    book.disconnected(BOB, tcp('11.0.113.8', 50002), T0)

    expect(book.get(ALICE, T0 + 10 * MINUTE)).toBeDefined()
    expect(book.get(ALICE, T0 + 10 * MINUTE + 1)).toBeUndefined()
    expect(book.get(BOB, T0 + 10 * MINUTE + 1)?.addresses.map(address => address.port)).toEqual([50001])
    expect(book.list(T0 + 24 * 60 * MINUTE).map(peer => peer.peerId)).toEqual([BOB])
  })

  it('evicts the least recently seen disconnected peer first when full', () => {
    const book = new ObservedAddressBook({ maxPeers: 3 })
    const peers = ['peer-a', 'peer-b', 'peer-c', 'peer-d', 'peer-e']

    book.record(peers[0]!, tcp('11.0.113.1', 1), T0) // oldest, but stays connected
    book.record(peers[1]!, tcp('11.0.113.2', 1), T0 + 1)
    book.record(peers[2]!, tcp('11.0.113.3', 1), T0 + 2)
    book.disconnected(peers[2]!, tcp('11.0.113.3', 1), T0 + 3)
    book.disconnected(peers[1]!, tcp('11.0.113.2', 1), T0 + 4) // now the most recently seen of the disconnected

    book.record(peers[3]!, tcp('11.0.113.4', 1), T0 + 5)
    expect(book.list(T0 + 5).map(peer => peer.peerId)).toEqual([peers[3], peers[1], peers[0]])

    book.record(peers[4]!, tcp('11.0.113.5', 1), T0 + 6)
    expect(book.list(T0 + 6).map(peer => peer.peerId)).toEqual([peers[4], peers[3], peers[0]])
  })

  it('evicts the least recently seen peer when every peer is connected', () => {
    const book = new ObservedAddressBook({ maxPeers: 2 })
    book.record('peer-a', tcp('11.0.113.1', 1), T0)
    book.record('peer-b', tcp('11.0.113.2', 1), T0 + 1)
    book.record('peer-a', udx('11.0.113.1', 2), T0 + 2)
    book.record('peer-c', tcp('11.0.113.3', 1), T0 + 3)

    expect(book.list(T0 + 3).map(peer => peer.peerId)).toEqual(['peer-c', 'peer-a'])
  })

  it('bounds the addresses kept per peer, dropping closed ones first', () => {
    const book = new ObservedAddressBook({ maxAddressesPerPeer: 2 })
    book.record(ALICE, udx('11.0.113.7', 1), T0)
    book.record(ALICE, udx('11.0.113.7', 2), T0 + 1)
    book.disconnected(ALICE, udx('11.0.113.7', 2), T0 + 2)
    book.record(ALICE, udx('11.0.113.7', 3), T0 + 3)

    expect(book.get(ALICE, T0 + 3)?.addresses.map(address => address.port)).toEqual([3, 1])
  })

  it('counts connected peers per transport', () => {
    const book = new ObservedAddressBook()
    book.record(ALICE, udx('11.0.113.7', 1), T0)
    book.record(ALICE, udx('11.0.113.7', 2), T0)
    book.record(ALICE, tcp('11.0.113.7', 3), T0)
    book.record(BOB, udx('11.0.113.8', 1), T0)
    book.disconnected(BOB, udx('11.0.113.8', 1), T0)

    expect(book.countConnected()).toEqual({ udx: 1, tcp: 1 })
  })
})

describe('observeConnections', () => {
  it('follows connection:open and connection:close until detached', async () => {
    const events = new EventTarget()
    const connection = (remotePeer: string, remoteAddr: ReturnType<typeof multiaddr>): Connection =>
      ({ remotePeer: { toString: () => remotePeer }, remoteAddr }) as unknown as Connection
    const alreadyOpen = connection(BOB, tcp('11.0.113.8', 50001))
    const node = {
      addEventListener: events.addEventListener.bind(events),
      removeEventListener: events.removeEventListener.bind(events),
      getConnections: () => [alreadyOpen]
    } as unknown as Libp2p
    const emit = (type: string, detail: Connection): boolean => events.dispatchEvent(new CustomEvent(type, { detail }))

    const book = new ObservedAddressBook()
    const detach = observeConnections(node, book)
    expect(book.get(BOB)?.connected).toBe(true)

    const alice = connection(ALICE, udx('11.0.113.7', 40001))
    emit('connection:open', alice)
    expect(book.get(ALICE)?.connected).toBe(true)

    emit('connection:close', alice)
    expect(book.get(ALICE)?.connected).toBe(false)

    detach()
    emit('connection:open', alice)
    expect(book.get(ALICE)?.connected).toBe(false)
  })
})
