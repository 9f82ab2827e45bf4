import { CODE_P2P, CODE_P2P_CIRCUIT, CODE_WEBRTC, multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * libp2p's `Circuit` matcher only knows stock transports, so a relayed address over the UDP overlay
 * (`/ip4/…/udp/…/udx/p2p/<gw>/p2p-circuit/p2p/<peer>`) would not match it. natmesh decides by the
 * p2p-circuit component itself. A WebRTC connection keeps the circuit it was signalled over in its address
 * (`…/p2p-circuit/webrtc/p2p/<peer>`) but carries its data on its own ICE path: not relayed.
 */
export function isRelayed (ma: Multiaddr): boolean {
  const codes = ma.getComponents().map(c => c.code)
  return codes.includes(CODE_P2P_CIRCUIT) && !codes.includes(CODE_WEBRTC)
}

/** `…/p2p-circuit/webrtc/p2p/<target>`: the address that dials `target` by WebRTC, signalled over that circuit */
export function webRtcAddress (relayed: Multiaddr): Multiaddr {
  const components = relayed.getComponents()
  const circuitAt = components.findIndex(c => c.code === CODE_P2P_CIRCUIT)
  if (circuitAt < 0 || components.some(c => c.code === CODE_WEBRTC)) throw new Error(`${relayed.toString()} is not a relayed address`)
  return multiaddr(components.slice(0, circuitAt + 1)).encapsulate('/webrtc').encapsulate(multiaddr(components.slice(circuitAt + 1)))
}

/** `<gateway address>/p2p/<gateway>/p2p-circuit/p2p/<target>`, whether or not the address already names the gateway */
export function relayAddress (gatewayAddr: Multiaddr, gateway: PeerId, target: PeerId): Multiaddr {
  return gatewayAddr.decapsulateCode(CODE_P2P).encapsulate(`/p2p/${gateway.toString()}/p2p-circuit/p2p/${target.toString()}`)
}

/**
 * Splits a relayed address into the gateway's own address and the form libp2p's relay (or WebRTC) transport
 * dials (`/p2p/<gateway>/p2p-circuit[/webrtc]/p2p/<target>`), which works over whatever connection to the
 * gateway exists.
 */
export function splitRelayAddress (ma: Multiaddr): { gateway: Multiaddr, circuit: Multiaddr } | undefined {
  const components = ma.getComponents()
  const circuitAt = components.findIndex(c => c.code === CODE_P2P_CIRCUIT)
  const gatewayId = components[circuitAt - 1]
  const webrtc = components[circuitAt + 1]?.code === CODE_WEBRTC
  const targetAt = circuitAt + (webrtc ? 2 : 1)
  const target = components[targetAt]
  if (circuitAt < 1 || gatewayId?.code !== CODE_P2P || target?.code !== CODE_P2P || targetAt + 1 !== components.length) return undefined
  return {
    gateway: multiaddr(components.slice(0, circuitAt)),
    circuit: multiaddr(`/p2p/${gatewayId.value ?? ''}/p2p-circuit${webrtc ? '/webrtc' : ''}/p2p/${target.value ?? ''}`)
  }
}
