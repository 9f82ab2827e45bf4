import { isPrivate } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { toUdpEndpoint } from '../../transport/index.js'
import type { UdpEndpoint } from '../../transport/index.js'

/**
 * Reads the addresses a remote put in its DCUtR CONNECT and keeps the public UDP overlay ones we can punch to.
 * Garbage (undecodable bytes, relayed addresses, other transports; private ones unless allowed) is skipped, not fatal: the
 * remote may be a go/rust peer offering QUIC addresses we simply can't use.
 */
export function punchableAddresses (encoded: Uint8Array[], allowPrivate = false, maxAddresses = 8): Array<{ ma: Multiaddr, endpoint: UdpEndpoint }> {
  const out: Array<{ ma: Multiaddr, endpoint: UdpEndpoint }> = []
  const seen = new Set<string>()
  for (const bytes of encoded) {
    if (out.length >= maxAddresses) break
    let ma: Multiaddr
    try {
      ma = multiaddr(bytes)
    } catch {
      continue
    }
    const endpoint = toUdpEndpoint(ma)
    if (endpoint == null || endpoint.port === 0 || (!allowPrivate && isPrivate(ma))) continue
    const key = `${endpoint.host}:${endpoint.port}`
    if (seen.has(key)) continue
    seen.add(key)
    out.push({ ma, endpoint })
  }
  return out
}
