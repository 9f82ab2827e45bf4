import { multiaddr } from '@multiformats/multiaddr'
import '../transport/multiaddr.js' // registers /udx: gateway addresses may name the UDP overlay
import type { StunServerAddress } from './types.js'

/**
 * Every natmesh gateway runs a STUN server at its own IP: one STUN server per distinct gateway IP found in the
 * gateway multiaddrs (names that are not IPs are skipped), on the given ports (primary, then other).
 */
export function gatewayStunServers (gateways: readonly string[], stunPorts: readonly number[]): StunServerAddress[] {
  const [port = 3478, otherPort] = stunPorts
  const hosts = gateways.flatMap(address => {
    const ip = multiaddr(address).getComponents().find(c => c.name === 'ip4' || c.name === 'ip6')?.value
    return ip == null ? [] : [ip]
  })
  return [...new Set(hosts)].map(host => ({ host, port, ...(otherPort != null ? { otherPort } : {}) }))
}
