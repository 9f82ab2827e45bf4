import type { Connection } from '@libp2p/interface'
import type { TransportManager } from '@libp2p/interface-internal'
import { isUdxTransport } from './transport.js'
import type { UdxPath } from './udx-connection.js'

/** A libp2p service exposing the UDP overlay's view of the connections it dialed to code outside libp2p. */
export class UdxPaths {
  private readonly components: { transportManager: TransportManager }

  constructor (components: { transportManager: TransportManager }) {
    this.components = components
  }

  /** undefined for a connection the overlay did not dial (TCP, relayed, WebRTC, inbound) */
  pathOf (connection: Connection): UdxPath | undefined {
    return this.components.transportManager.getTransports().find(isUdxTransport)?.pathOf(connection)
  }
}

export function udxPaths (): (components: { transportManager: TransportManager }) => UdxPaths {
  return (components) => new UdxPaths(components)
}
