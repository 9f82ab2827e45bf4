import { isPrivate } from '@libp2p/utils'
import { TypedEventEmitter } from 'main-event'
import type { Connection, IdentifyResult } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isRelayed } from '../core/relay-address.js'
import { isUdxMultiaddr, toUdpEndpoint } from '../transport/index.js'
import type { UdpEndpoint } from '../transport/index.js'

/** `previous`: what the gateway saw before, when it saw something else (our public address changed) */
export type ObservedAddressEvent = { event: 'observed-address', gateway: string, address: string, previous?: string }

/** a gateway that saw us at one public IP now sees us at another, on `connection` */
export interface ObservedMove { gateway: string, previous: string, address: string, connection: Connection }

export interface ObservedAddressesEvents {
  event: CustomEvent<ObservedAddressEvent>
  moved: CustomEvent<ObservedMove>
  /** an observation arrived: publicAddresses() may have changed */
  observed: CustomEvent
}

/** after a network change, a hole punch waits at most this long for a gateway to observe our new address */
const RELEARN_WAIT_MS = 3000

/**
 * The peer's address book: its public UDP overlay address per gateway, as that gateway observed it (by
 * identify); what a hole punch offers the other side, and the NAT mapping's last evidence.
 */
export class ObservedAddresses extends TypedEventEmitter<ObservedAddressesEvents> {
  private readonly allowPrivateAddresses: boolean
  private readonly byGateway = new Map<string, Multiaddr>()
  private listeningOn?: UdpEndpoint
  /** forget() ran and no gateway has observed us since */
  private relearning = false

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
    this.relearning = false
    if (previous?.equals(observed) !== true) {
      const event: ObservedAddressEvent = { event: 'observed-address', gateway, address: observed.toString(), ...(previous != null ? { previous: previous.toString() } : {}) }
      this.safeDispatchEvent('event', { detail: event })
      // a new port alone is no move: a NAT that maps each connection afresh gives one after a mapping expired
      if (previous != null && toUdpEndpoint(previous)?.host !== toUdpEndpoint(observed)?.host) this.safeDispatchEvent('moved', { detail: { gateway, previous: previous.toString(), address: observed.toString(), connection: result.connection } })
    }
    this.safeDispatchEvent('observed')
  }

  /** After a network change: what the gateways saw is no longer where we are, except what `keep` has seen since. */
  forget (keep?: string): void {
    for (const gateway of this.byGateway.keys()) if (gateway !== keep) this.byGateway.delete(gateway)
    this.relearning = this.byGateway.size === 0
  }

  /**
   * Our public addresses: at once, except after forget(), when they are being learnt again: then once a gateway
   * has observed us again, or after RELEARN_WAIT_MS or when `signal` aborts (a network without UDP never gets
   * one). What a hole punch offers must be where we are now.
   */
  async current (signal: AbortSignal): Promise<Multiaddr[]> {
    if (!this.relearning || signal.aborted) return this.publicAddresses()
    signal = AbortSignal.any([signal, AbortSignal.timeout(RELEARN_WAIT_MS)])
    await new Promise<void>((resolve) => {
      const done = (): void => {
        this.removeEventListener('observed', done)
        signal.removeEventListener('abort', done)
        resolve()
      }
      this.addEventListener('observed', done)
      signal.addEventListener('abort', done)
    })
    return this.publicAddresses()
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
