import { networkInterfaces } from 'node:os'
import type { Connection, Libp2p, Logger } from '@libp2p/interface'
import type { OwnNat } from '../nat/own-nat.js'
import { PathLostError } from '../transport/liveness.js'
import type { GatewayPool } from './gateway-pool.js'
import type { ObservedAddresses, ObservedMove } from './observed-addresses.js'

const DEFAULT_POLL_MS = 500

/** `reason`: what showed it (our local addresses, or the public address a gateway sees us at) */
export type NetworkChangeEvent = { event: 'network-change', reason: string }

export interface NetworkChangeInit {
  node: Libp2p
  pool: GatewayPool
  observed: ObservedAddresses
  ownNat: OwnNat
  /** our interfaces' addresses are read this often, to notice a change before the old paths fall silent. Default 500 */
  pollMs?: number
  log: Logger
  emit: (event: NetworkChangeEvent) => void
}

/**
 * Notices that the network under the peer changed, and makes everything that depended on the old one start over
 * at once instead of waiting for its paths to fall silent: an address of one of our interfaces went away (another
 * LAN, a new DHCP lease), or a gateway sees us at another public IP than before (our NAT restarted with new mappings).
 * Then every connection made before (to gateways and peers, direct or relayed) runs over a path that is gone: each is aborted, the
 * gateway links dial again at once and re-reserve, our public addresses and NAT are learnt again, and sessions
 * resume over the relay, where the next hole punch (offering the new addresses) takes them direct again.
 */
export class NetworkChange {
  private readonly init: NetworkChangeInit
  private timer?: NodeJS.Timeout
  private addresses = new Set<string>()

  constructor (init: NetworkChangeInit) {
    this.init = init
  }

  start (): void {
    this.addresses = localAddresses()
    this.timer = setInterval(() => { this.poll() }, this.init.pollMs ?? DEFAULT_POLL_MS)
    this.timer.unref()
    this.init.observed.addEventListener('moved', this.onMoved)
  }

  stop (): void {
    clearInterval(this.timer)
    this.init.observed.removeEventListener('moved', this.onMoved)
  }

  private poll (): void {
    const now = localAddresses()
    // no address at all is a link going down or being replaced: the change shows once one is back
    if (now.size === 0) return
    const gone = [...this.addresses].filter(address => !now.has(address))
    this.addresses = now
    // an address that appears (a container bridge, a second link) breaks no path: only one that went away does
    if (gone.length > 0) this.changed(`local address ${gone.join(', ')} gone (now ${[...now].join(', ')})`, Date.now())
  }

  private readonly onMoved = (evt: CustomEvent<ObservedMove>): void => {
    const { gateway, previous, address, connection } = evt.detail
    this.changed(`gateway ${gateway} sees us at ${address}, no longer at ${previous}`, connection.timeline.open, connection)
  }

  /**
   * Connections opened before `since` run over the old network: all are aborted (relayed ones too, which ride on
   * an old gateway connection). `keep`: the connection that showed the change, made over the new path.
   */
  private changed (reason: string, since: number, keep?: Connection): void {
    const { node, pool, observed, ownNat, log, emit } = this.init
    log('network changed - %s', reason)
    emit({ event: 'network-change', reason })
    observed.forget(keep == null ? undefined : keep.remotePeer.toString())
    ownNat.networkChanged()
    pool.networkChanged(keep)
    for (const connection of node.getConnections()) {
      if (connection === keep || connection.status !== 'open' || connection.timeline.open >= since) continue
      connection.abort(new PathLostError(`our network changed (${reason}): this path is gone`))
    }
  }
}

/**
 * every non-loopback IPv4 address of ours: the peer's paths are IPv4 only, and IPv6 temporary (privacy) addresses
 * come and go by the hour on a network that never changed
 */
function localAddresses (): Set<string> {
  return new Set(Object.values(networkInterfaces()).flatMap(addrs => addrs ?? []).filter(addr => !addr.internal && addr.family === 'IPv4').map(addr => addr.address))
}
