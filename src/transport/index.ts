/**
 * The UDP overlay: a libp2p transport whose ONE udx socket listens, dials and punches.
 */
import { UdxTransport } from './transport.js'
import type { UdxTransportComponents, UdxTransportInit } from './transport.js'
import type { Transport } from '@libp2p/interface'

export { UdxTransport, isUdxTransport, UDX_ANSWERED, UDX_TRANSPORT_TAG } from './transport.js'
export { upgradesWithNoise } from './noise-first.js'
export type { UdxTransportInit } from './transport.js'
export { registerUdxProtocol, toUdpEndpoint, toUdxMultiaddr, isUdxMultiaddr, UDX_PROTOCOL } from './multiaddr.js'
export type { UdpEndpoint } from './multiaddr.js'
export { udxPaths, UdxPaths } from './udx-paths.js'
export type { UdxPath } from './udx-connection.js'
export { PATH_CADENCE } from './liveness.js'
export type { PathCadence } from './liveness.js'

export function udxOverlay (init: UdxTransportInit = {}): (components: UdxTransportComponents) => Transport {
  return (components) => new UdxTransport(components, init)
}
