import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import type { Connection, IdentifyResult, PeerId } from '@libp2p/interface'
import { ObservedAddresses } from '../../src/peer/observed-addresses.js'
import type { ObservedMove } from '../../src/peer/observed-addresses.js'

/** what identify over a direct connection to `gateway` reports: the address the gateway saw us at */
function identify (gateway: PeerId, observed: string, connection = { remoteAddr: multiaddr('/ip4/198.51.100.1/udp/4001/udx') }): IdentifyResult {
  return { peerId: gateway, observedAddr: multiaddr(observed), connection: connection as unknown as Connection, protocols: [], listenAddrs: [] } as unknown as IdentifyResult
}

async function gateway (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

// the lab's "internet" (src/lab/addressing.ts): public as far as isPrivate() goes, unlike the RFC 5737 ranges
const OLD = '/ip4/11.0.113.7/udp/50000/udx'
const NEW = '/ip4/11.0.113.99/udp/50000/udx'

describe('ObservedAddresses across a network change', () => {
  it('a gateway that sees us at another public IP is a move (with the connection that showed it); another port alone is not', async () => {
    const book = new ObservedAddresses({ allowPrivateAddresses: false })
    const gw = await gateway()
    const moves: ObservedMove[] = []
    book.addEventListener('moved', (evt) => { moves.push(evt.detail) })
    book.identifiedByGateway(identify(gw, OLD))
    book.identifiedByGateway(identify(gw, '/ip4/11.0.113.7/udp/50001/udx'))
    expect(moves).toEqual([])
    const connection = { remoteAddr: multiaddr('/ip4/198.51.100.1/udp/4001/udx') }
    book.identifiedByGateway(identify(gw, NEW, connection))
    expect(moves.map(m => [m.gateway, m.previous, m.address])).toEqual([[gw.toString(), '/ip4/11.0.113.7/udp/50001/udx', NEW]])
    expect(moves[0]?.connection).toBe(connection)
  })

  it('after forget(), a punch asking for our addresses waits for the next observation instead of offering the old one', async () => {
    const book = new ObservedAddresses({ allowPrivateAddresses: false })
    const gw = await gateway()
    book.identifiedByGateway(identify(gw, OLD))
    expect((await book.current(new AbortController().signal)).map(String)).toEqual([OLD])
    book.forget()
    expect(book.publicAddresses()).toEqual([])
    const waiting = book.current(new AbortController().signal)
    book.identifiedByGateway(identify(gw, NEW))
    expect((await waiting).map(String)).toEqual([NEW])
  })

  it('forget(keep) keeps what that gateway saw since the change, and nothing waits; an aborted wait returns what there is', async () => {
    const book = new ObservedAddresses({ allowPrivateAddresses: false })
    const [a, b] = [await gateway(), await gateway()]
    book.identifiedByGateway(identify(a, NEW))
    book.identifiedByGateway(identify(b, OLD))
    book.forget(a.toString())
    expect((await book.current(new AbortController().signal)).map(String)).toEqual([NEW])
    book.forget()
    expect(await book.current(AbortSignal.abort())).toEqual([])
  })

  it('a peer that never had an observation (no UDP) is not kept waiting', async () => {
    const book = new ObservedAddresses({ allowPrivateAddresses: false })
    expect(await book.current(new AbortController().signal)).toEqual([])
  })
})
