import { CODE_P2P, multiaddr, registry } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'

/**
 * The UDP overlay's multiaddr protocol: `/ip4/1.2.3.4/udp/4001/udx`. The code sits in the multicodec
 * private-use range, so it can never clash with a registered protocol; other libp2p stacks simply don't dial it.
 */
export const UDX_PROTOCOL = { code: 0x3f_4e_58, name: 'udx', size: 0 } as const

let registered = false

export function registerUdxProtocol (): void {
  if (registered) return
  try {
    registry.getProtocol(UDX_PROTOCOL.name)
  } catch {
    registry.addProtocol({ ...UDX_PROTOCOL })
  }
  registered = true
}

registerUdxProtocol()

export interface UdpEndpoint {
  host: string
  port: number
  family: 4 | 6
}

/** Parses `/ip4|ip6/<host>/udp/<port>/udx[/p2p/<id>]`; anything else (relayed, dns, other transports) is undefined. */
export function toUdpEndpoint (ma: Multiaddr): UdpEndpoint | undefined {
  const components = ma.getComponents()
  const [ip, udp, udx, ...rest] = components
  if (ip == null || udp == null || udx == null) return undefined
  if ((ip.name !== 'ip4' && ip.name !== 'ip6') || ip.value == null) return undefined
  if (udp.name !== 'udp' || udp.value == null || udx.name !== UDX_PROTOCOL.name) return undefined
  if (rest.length > 1 || (rest.length === 1 && rest[0]?.code !== CODE_P2P)) return undefined
  const port = Number(udp.value)
  if (!Number.isInteger(port) || port < 0 || port > 65535) return undefined
  return { host: ip.value, port, family: ip.name === 'ip4' ? 4 : 6 }
}

export function isUdxMultiaddr (ma: Multiaddr): boolean {
  return toUdpEndpoint(ma) != null
}

export function toUdxMultiaddr (host: string, port: number): Multiaddr {
  const family = host.includes(':') ? 'ip6' : 'ip4'
  return multiaddr(`/${family}/${host}/udp/${port}/udx`)
}
