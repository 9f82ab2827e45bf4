import { networkInterfaces } from 'node:os'
import type { NetworkInterfaceInfo } from 'node:os'
import { isPrivate } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { toUdpEndpoint, toUdxMultiaddr } from '../transport/index.js'
import { decodeOverlayAddress } from './dialable-addresses.js'

/**
 * Same-site peers: two peers behind one NAT reach each other's public address only if the NAT hairpins, and many
 * don't. Their LAN addresses work, so they swap those (DCUtR extension field 1002), under two rules that keep
 * private addresses private and keep us from dialling into networks we are not on:
 * - offered only to a peer whose public IP (as the gateways observed it) is one of ours;
 * - dialled only when in the same IPv4 subnet as one of our own interfaces.
 */

/** at most this many LAN candidates are offered or tried */
export const MAX_LAN_CANDIDATES = 4

type Interfaces = NodeJS.Dict<NetworkInterfaceInfo[]>

function ipv4Interfaces (interfaces: Interfaces): NetworkInterfaceInfo[] {
  return Object.values(interfaces).flatMap(list => list ?? []).filter(info => info.family === 'IPv4' && !info.internal)
}

/**
 * Our LAN candidates: the UDP overlay's listen port on each private IPv4 interface address (every interface when
 * the socket is bound to 0.0.0.0, else the bound address if private).
 */
export function ownLanCandidates (listenAddrs: Multiaddr[], interfaces: Interfaces = networkInterfaces()): Multiaddr[] {
  const out = new Map<string, Multiaddr>()
  for (const endpoint of listenAddrs.map(ma => toUdpEndpoint(ma))) {
    if (endpoint == null || endpoint.family !== 4 || endpoint.port === 0) continue
    const hosts = endpoint.host === '0.0.0.0' ? ipv4Interfaces(interfaces).map(info => info.address) : [endpoint.host]
    for (const host of hosts) {
      const ma = toUdxMultiaddr(host, endpoint.port)
      if (isPrivate(ma) && !isLoopback(host)) out.set(ma.toString(), ma)
    }
  }
  return [...out.values()].slice(0, MAX_LAN_CANDIDATES)
}

/** Whether any of the remote's observed public addresses has one of our public IPs: the pair shares a NAT. */
export function sharesPublicIp (own: Multiaddr[], remote: Uint8Array[]): boolean {
  const ours = new Set(own.map(ma => toUdpEndpoint(ma)?.host).filter(host => host != null))
  return remote.some(bytes => {
    try {
      const host = toUdpEndpoint(multiaddr(bytes))?.host
      return host != null && ours.has(host)
    } catch {
      return false
    }
  })
}

/**
 * The remote's LAN candidates we may dial: private IPv4 UDP overlay addresses in the subnet of one of our own
 * interfaces. Anything else (garbage, public or loopback addresses, other subnets, our own addresses: the same
 * docker bridge address exists on many hosts) is dropped.
 */
export function dialableLanCandidates (encoded: Uint8Array[], interfaces: Interfaces = networkInterfaces()): Multiaddr[] {
  const own = new Set(ipv4Interfaces(interfaces).map(info => info.address))
  const subnets = ipv4Interfaces(interfaces).flatMap(info => {
    const address = ipv4ToInt(info.address)
    const mask = ipv4ToInt(info.netmask)
    return address == null || mask == null ? [] : [{ network: (address & mask) >>> 0, mask }]
  })
  const out = new Map<string, Multiaddr>()
  for (const bytes of encoded.slice(0, MAX_LAN_CANDIDATES * 2)) {
    const decoded = decodeOverlayAddress(bytes)
    if (decoded == null) continue
    const { ma, endpoint } = decoded
    const ip = endpoint.family === 4 ? ipv4ToInt(endpoint.host) : undefined
    if (ip == null || !isPrivate(ma) || isLoopback(endpoint.host) || own.has(endpoint.host)) continue
    if (!subnets.some(({ network, mask }) => ((ip & mask) >>> 0) === network)) continue
    const clean = toUdxMultiaddr(endpoint.host, endpoint.port)
    out.set(clean.toString(), clean)
  }
  return [...out.values()].slice(0, MAX_LAN_CANDIDATES)
}

function isLoopback (host: string): boolean {
  return host.startsWith('127.')
}

function ipv4ToInt (ip: string): number | undefined {
  const parts = ip.split('.')
  if (parts.length !== 4) return undefined
  let value = 0
  for (const part of parts) {
    if (!/^\d{1,3}$/.test(part) || Number(part) > 255) return undefined
    value = value * 256 + Number(part)
  }
  return value
}
