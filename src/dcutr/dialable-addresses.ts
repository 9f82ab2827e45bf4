import { isPrivate } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { toUdpEndpoint } from '../transport/index.js'
import type { UdpEndpoint } from '../transport/index.js'

/** A remote's public UDP overlay address, with its endpoint for punch datagrams. */
export interface PunchTarget { ma: Multiaddr, endpoint: UdpEndpoint }

/**
 * Reads the addresses a remote put in its DCUtR CONNECT and keeps the public UDP overlay ones we can punch to.
 * Garbage (undecodable bytes, relayed addresses, other transports; private ones unless allowed) is skipped, not fatal: the
 * remote may be a go/rust peer offering QUIC addresses we simply can't use.
 */
export function punchableAddresses (encoded: Uint8Array[], allowPrivate = false, maxAddresses = 8): PunchTarget[] {
  const out: PunchTarget[] = []
  const seen = new Set<string>()
  for (const bytes of encoded) {
    if (out.length >= maxAddresses) break
    const decoded = decodeOverlayAddress(bytes)
    if (decoded == null || (!allowPrivate && isPrivate(decoded.ma))) continue
    const { ma, endpoint } = decoded
    const key = `${endpoint.host}:${endpoint.port}`
    if (seen.has(key)) continue
    seen.add(key)
    out.push({ ma, endpoint })
  }
  return out
}

/** A UDP overlay address from a DCUtR message; undefined for undecodable bytes, other transports and port 0. */
export function decodeOverlayAddress (bytes: Uint8Array): PunchTarget | undefined {
  let ma: Multiaddr
  try {
    ma = multiaddr(bytes)
  } catch {
    return undefined
  }
  const endpoint = toUdpEndpoint(ma)
  return endpoint == null || endpoint.port === 0 ? undefined : { ma, endpoint }
}
