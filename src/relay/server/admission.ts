import type { ConnectionGater, MultiaddrConnection } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** the IP of an address (`/ip4/…` or `/ip6/…` first), or undefined for anything else */
export function ipOf (address: Multiaddr): string | undefined {
  const first = address.getComponents()[0]
  return first?.name === 'ip4' || first?.name === 'ip6' ? first.value : undefined
}

/**
 * Caps the inbound connections one IP may have in their handshake (noise, muxer) at once. libp2p caps pending
 * handshakes only across all sources (maxIncomingPendingConnections), so without this one source that opens
 * connections and never finishes them would hold every slot until the upgrade timeout and lock everybody out.
 * A connection counts from the gater's first look at it until it is upgraded or closed.
 */
export function pendingConnectionsPerIpGate (maxPerIp: number): Pick<ConnectionGater, 'denyInboundConnection' | 'denyInboundUpgradedConnection'> {
  const pending = new Map<string, number>()
  const counted = new WeakMap<MultiaddrConnection, string>()
  const release = (maConn: MultiaddrConnection): void => {
    const ip = counted.get(maConn)
    if (ip == null) return
    counted.delete(maConn)
    const left = (pending.get(ip) ?? 1) - 1
    if (left > 0) pending.set(ip, left)
    else pending.delete(ip)
  }
  return {
    denyInboundConnection: (maConn) => {
      const ip = ipOf(maConn.remoteAddr)
      if (ip == null) return false
      const count = pending.get(ip) ?? 0
      if (count >= maxPerIp) return true
      pending.set(ip, count + 1)
      counted.set(maConn, ip)
      maConn.addEventListener('close', () => { release(maConn) }, { once: true })
      return false
    },
    denyInboundUpgradedConnection: (_peer, maConn) => {
      release(maConn)
      return false
    }
  }
}
