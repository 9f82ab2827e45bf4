import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import { beforeAll, describe, expect, it } from 'vitest'
import { isRelayed, relayAddress, splitRelayAddress, webRtcAddress } from '../../src/core/relay-address.js'
import '../../src/transport/index.js' // registers /udx

describe('relayed addresses', () => {
  let gw: PeerId
  let target: PeerId
  let other: PeerId
  beforeAll(async () => {
    const newPeerId = async (): Promise<PeerId> => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    gw = await newPeerId()
    target = await newPeerId()
    other = await newPeerId()
  })

  describe('isRelayed', () => {
    it('is true exactly when the address has a p2p-circuit component', () => {
      expect(isRelayed(multiaddr(`/ip4/1.2.3.4/udp/4001/udx/p2p/${gw}/p2p-circuit/p2p/${target}`))).toBe(true)
      expect(isRelayed(multiaddr(`/ip4/1.2.3.4/tcp/4001/p2p/${gw}/p2p-circuit/p2p/${target}`))).toBe(true)
      expect(isRelayed(multiaddr(`/p2p/${gw}/p2p-circuit/p2p/${target}`))).toBe(true)
      expect(isRelayed(multiaddr(`/p2p/${gw}/p2p-circuit`))).toBe(true)
      expect(isRelayed(multiaddr('/ip4/1.2.3.4/udp/4001/udx'))).toBe(false)
      expect(isRelayed(multiaddr(`/ip4/1.2.3.4/udp/4001/udx/p2p/${target}`))).toBe(false)
      expect(isRelayed(multiaddr(`/ip4/1.2.3.4/tcp/4001/p2p/${target}`))).toBe(false)
      expect(isRelayed(multiaddr('/'))).toBe(false)
    })

    it('is false for a WebRTC connection signalled over a circuit: its data takes the ICE path', () => {
      expect(isRelayed(multiaddr(`/p2p/${gw}/p2p-circuit/webrtc/p2p/${target}`))).toBe(false)
      expect(isRelayed(multiaddr(`/ip4/1.2.3.4/udp/4001/udx/p2p/${gw}/p2p-circuit/webrtc/p2p/${target}`))).toBe(false)
      expect(isRelayed(multiaddr(`/webrtc/p2p/${target}`))).toBe(false)
    })
  })

  describe('webRtcAddress', () => {
    it('puts /webrtc right after the circuit, on the UDP overlay form and the bare one', () => {
      expect(webRtcAddress(multiaddr(`/ip4/1.2.3.4/udp/4001/udx/p2p/${gw}/p2p-circuit/p2p/${target}`)).toString())
        .toBe(`/ip4/1.2.3.4/udp/4001/udx/p2p/${gw}/p2p-circuit/webrtc/p2p/${target}`)
      expect(webRtcAddress(multiaddr(`/p2p/${gw}/p2p-circuit/p2p/${target}`)).toString()).toBe(`/p2p/${gw}/p2p-circuit/webrtc/p2p/${target}`)
    })

    it('refuses an address that is not relayed, or already WebRTC', () => {
      expect(() => webRtcAddress(multiaddr(`/ip4/1.2.3.4/udp/4001/udx/p2p/${target}`))).toThrow('not a relayed address')
      expect(() => webRtcAddress(multiaddr(`/p2p/${gw}/p2p-circuit/webrtc/p2p/${target}`))).toThrow('not a relayed address')
    })

    it('splits into the gateway address and the WebRTC circuit libp2p dials', () => {
      const split = splitRelayAddress(webRtcAddress(relayAddress(multiaddr('/ip4/1.2.3.4/udp/4001/udx'), gw, target)))
      expect(split?.gateway.toString()).toBe(`/ip4/1.2.3.4/udp/4001/udx/p2p/${gw}`)
      expect(split?.circuit.toString()).toBe(`/p2p/${gw}/p2p-circuit/webrtc/p2p/${target}`)
    })
  })

  describe('relayAddress', () => {
    it('builds <gateway addr>/p2p/<gw>/p2p-circuit/p2p/<target> from an address without the gateway id', () => {
      const ma = relayAddress(multiaddr('/ip4/1.2.3.4/udp/4001/udx'), gw, target)
      expect(ma.toString()).toBe(`/ip4/1.2.3.4/udp/4001/udx/p2p/${gw}/p2p-circuit/p2p/${target}`)
      expect(isRelayed(ma)).toBe(true)
    })

    it('does not repeat the gateway id when the address already names it', () => {
      const ma = relayAddress(multiaddr(`/ip4/1.2.3.4/tcp/4001/p2p/${gw}`), gw, target)
      expect(ma.toString()).toBe(`/ip4/1.2.3.4/tcp/4001/p2p/${gw}/p2p-circuit/p2p/${target}`)
    })

    it('names the gateway it is given, not a stale id in the address', () => {
      const ma = relayAddress(multiaddr(`/ip4/1.2.3.4/udp/4001/udx/p2p/${other}`), gw, target)
      expect(ma.toString()).toBe(`/ip4/1.2.3.4/udp/4001/udx/p2p/${gw}/p2p-circuit/p2p/${target}`)
    })

    it('round-trips through splitRelayAddress, with and without the gateway id in the input', () => {
      for (const base of [multiaddr('/ip4/1.2.3.4/udp/4001/udx'), multiaddr(`/ip4/1.2.3.4/udp/4001/udx/p2p/${gw}`)]) {
        const split = splitRelayAddress(relayAddress(base, gw, target))
        expect(split?.gateway.toString()).toBe(`/ip4/1.2.3.4/udp/4001/udx/p2p/${gw}`)
        expect(split?.circuit.toString()).toBe(`/p2p/${gw}/p2p-circuit/p2p/${target}`)
      }
    })
  })

  describe('splitRelayAddress', () => {
    it('splits a full relayed address into the gateway address and the circuit libp2p dials', () => {
      const split = splitRelayAddress(multiaddr(`/ip4/127.0.0.1/tcp/4001/p2p/${gw}/p2p-circuit/p2p/${target}`))
      expect(split?.gateway.toString()).toBe(`/ip4/127.0.0.1/tcp/4001/p2p/${gw}`)
      expect(split?.circuit.toString()).toBe(`/p2p/${gw}/p2p-circuit/p2p/${target}`)
    })

    it('accepts a bare circuit (no transport address for the gateway)', () => {
      const split = splitRelayAddress(multiaddr(`/p2p/${gw}/p2p-circuit/p2p/${target}`))
      expect(split?.gateway.toString()).toBe(`/p2p/${gw}`)
      expect(split?.circuit.toString()).toBe(`/p2p/${gw}/p2p-circuit/p2p/${target}`)
    })

    it('is undefined for anything that is not exactly <gateway>/p2p/<gw>/p2p-circuit/p2p/<target>', () => {
      const malformed = [
        // not relayed
        '/ip4/1.2.3.4/udp/4001/udx',
        `/ip4/1.2.3.4/udp/4001/udx/p2p/${target}`,
        // no gateway peer id before the circuit
        `/ip4/1.2.3.4/udp/4001/udx/p2p-circuit/p2p/${target}`,
        `/p2p-circuit/p2p/${target}`,
        // no target after the circuit
        `/ip4/1.2.3.4/udp/4001/udx/p2p/${gw}/p2p-circuit`,
        `/p2p/${gw}/p2p-circuit`,
        // something other than a peer id after the circuit
        `/ip4/1.2.3.4/udp/4001/udx/p2p/${gw}/p2p-circuit/ip4/5.6.7.8`,
        // trailing components after the target, or a circuit of circuits
        `/ip4/1.2.3.4/udp/4001/udx/p2p/${gw}/p2p-circuit/p2p/${target}/p2p-circuit`,
        `/ip4/1.2.3.4/udp/4001/udx/p2p/${gw}/p2p-circuit/p2p/${target}/p2p-circuit/p2p/${other}`,
        // webrtc anywhere but right after the circuit, or without a target
        `/ip4/1.2.3.4/udp/4001/udx/p2p/${gw}/p2p-circuit/p2p/${target}/webrtc`,
        `/ip4/1.2.3.4/udp/4001/udx/p2p/${gw}/p2p-circuit/webrtc`,
        '/'
      ]
      for (const ma of malformed) {
        expect(splitRelayAddress(multiaddr(ma)), ma).toBeUndefined()
      }
    })
  })
})
