import type { NetworkInterfaceInfo } from 'node:os'
import { multiaddr } from '@multiformats/multiaddr'
import { describe, expect, it } from 'vitest'
import { dialableLanCandidates, MAX_LAN_CANDIDATES, ownLanCandidates, sharesPublicIp } from '../../src/dcutr/lan-candidates.js'
import '../../src/transport/index.js' // registers /udx

const bytes = (ma: string): Uint8Array => multiaddr(ma).bytes
const iface = (address: string, netmask: string, internal = false): NetworkInterfaceInfo =>
  ({ address, netmask, family: 'IPv4', mac: '00:00:00:00:00:00', internal, cidr: null })
/** a host on 192.168.1.0/24 and 10.20.0.0/16, with loopback and a public address */
const interfaces = {
  lo: [iface('127.0.0.1', '255.0.0.0', true)],
  eth0: [iface('192.168.1.3', '255.255.255.0')],
  wg0: [iface('10.20.5.1', '255.255.0.0')],
  wan0: [iface('11.0.113.21', '255.255.255.0')]
}

describe('LAN candidates', () => {
  it('offers the overlay port on each private interface address, never loopback or public ones', () => {
    const wildcard = ownLanCandidates([multiaddr('/ip4/0.0.0.0/udp/4242/udx')], interfaces).map(String)
    expect(wildcard).toEqual(['/ip4/192.168.1.3/udp/4242/udx', '/ip4/10.20.5.1/udp/4242/udx'])
    // a listener that already expanded its wildcard lists each address; TCP and port 0 are not overlay candidates
    const expanded = ownLanCandidates([
      multiaddr('/ip4/127.0.0.1/udp/4242/udx'), multiaddr('/ip4/192.168.1.3/udp/4242/udx'), multiaddr('/ip4/11.0.113.21/udp/4242/udx'),
      multiaddr('/ip4/192.168.1.3/tcp/4242'), multiaddr('/ip4/192.168.1.3/udp/0/udx')
    ], interfaces).map(String)
    expect(expanded).toEqual(['/ip4/192.168.1.3/udp/4242/udx'])
  })

  it('calls a pair same-site only when the remote names one of our public IPs', () => {
    const own = [multiaddr('/ip4/11.0.113.21/udp/40000/udx')]
    expect(sharesPublicIp(own, [bytes('/ip4/11.0.113.21/udp/51000/udx')])).toBe(true)
    expect(sharesPublicIp(own, [bytes('/ip4/11.0.113.22/udp/40000/udx')])).toBe(false)
    expect(sharesPublicIp(own, [])).toBe(false)
    expect(sharesPublicIp([], [bytes('/ip4/11.0.113.21/udp/51000/udx')])).toBe(false)
    expect(sharesPublicIp(own, [new Uint8Array([1, 2, 3]), bytes('/ip4/11.0.113.21/tcp/1')])).toBe(false)
  })

  it('dials only private overlay addresses in the subnet of one of our interfaces', () => {
    const offered = [
      '/ip4/192.168.1.2/udp/5000/udx', // our eth0 subnet
      '/ip4/10.20.99.7/udp/5001/udx', // our wg0 /16
      '/ip4/192.168.2.2/udp/5002/udx', // a LAN we are not on
      '/ip4/172.16.0.5/udp/5003/udx', // private, not ours
      '/ip4/11.0.113.30/udp/5004/udx', // public, in wan0's subnet: not a LAN candidate
      '/ip4/127.0.0.1/udp/5005/udx', // loopback
      '/ip4/10.20.5.1/udp/5007/udx', // our own address
      '/ip4/192.168.1.9/udp/0/udx', // port 0
      '/ip4/192.168.1.9/tcp/5006' // not the overlay
    ].map(bytes)
    const kept = dialableLanCandidates([...offered, new Uint8Array([0xff, 0x00])], interfaces).map(String)
    expect(kept).toEqual(['/ip4/192.168.1.2/udp/5000/udx', '/ip4/10.20.99.7/udp/5001/udx'])
  })

  it('caps what it offers and what it dials', () => {
    const many = Array.from({ length: 20 }, (_, i) => bytes(`/ip4/192.168.1.${10 + i}/udp/6000/udx`))
    expect(dialableLanCandidates(many, interfaces)).toHaveLength(MAX_LAN_CANDIDATES)
    const lots = Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`eth${i}`, [iface(`192.168.${i}.3`, '255.255.255.0')]]))
    expect(ownLanCandidates([multiaddr('/ip4/0.0.0.0/udp/1/udx')], lots)).toHaveLength(MAX_LAN_CANDIDATES)
  })
})
