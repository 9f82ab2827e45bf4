import { isPrivate } from '@libp2p/utils'
import { TypedEventEmitter } from 'main-event'
import type { IdentifyResult } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isRelayed } from '../core/relay-address.js'
import { isUdxMultiaddr, toUdpEndpoint } from '../transport/index.js'
import type { UdpEndpoint } from '../transport/index.js'

export type ObservedAddressEvent = { event: 'observed-address', gateway: string, address: string }

export interface ObservedAddressesEvents {
  event: CustomEvent<ObservedAddressEvent>
}

/**
 * The peer's address book: its public UDP overlay address per gateway, as that gateway observed it (by
 * identify); what a hole punch offers the other side, and the NAT mapping's last evidence.
 */
export class ObservedAddresses extends TypedEventEmitter<ObservedAddressesEvents> {
  private readonly allowPrivateAddresses: boolean
  private readonly byGateway = new Map<string, Multiaddr>()
  private listeningOn?: UdpEndpoint

  /** `allowPrivateAddresses`: a private address observed counts (labs, LANs); otherwise it is ignored */
  constructor (init: { allowPrivateAddresses: boolean }) {
    super()
    this.allowPrivateAddresses = init.allowPrivateAddresses
  }

  /** our own overlay socket, once it listens */
  listening (addresses: Multiaddr[]): void {
    this.listeningOn = addresses.map(ma => toUdpEndpoint(ma)).find(endpoint => endpoint != null)
  }

  /** a gateway's identify; any gateway's, not only our links' (a link's first connection is often the one the pool opened to probe) */
  identifiedByGateway (result: IdentifyResult): void {
    const observed = result.observedAddr
    if (observed == null || isRelayed(result.connection.remoteAddr)) return
    if (!isUdxMultiaddr(observed)) return
    if (isPrivate(observed) && !this.allowPrivateAddresses) return
    const gateway = result.peerId.toString()
    const previous = this.byGateway.get(gateway)
    this.byGateway.set(gateway, observed)
    if (previous?.equals(observed) !== true) this.safeDispatchEvent('event', { detail: { event: 'observed-address', gateway, address: observed.toString() } })
  }

  /** distinct addresses, in the order the gateways first saw them */
  publicAddresses (): Multiaddr[] {
    return [...new Map([...this.byGateway.values()].map(ma => [ma.toString(), ma])).values()]
  }

  /** our socket, and one observed endpoint per gateway (repeats kept: two gateways seeing one port shows endpoint independence) */
  observations (): { listening?: UdpEndpoint, observed: UdpEndpoint[] } {
    const observed = [...this.byGateway.values()].map(ma => toUdpEndpoint(ma)).filter(endpoint => endpoint != null)
    return { ...(this.listeningOn != null ? { listening: this.listeningOn } : {}), observed }
  }
}
