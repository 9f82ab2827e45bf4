import { peerIdFromString } from '@libp2p/peer-id'
import type { Libp2p } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { splitRelayAddress } from './relay-address.js'

/**
 * Turns target addresses into what libp2p can dial. libp2p's relay transport dials `/p2p/<gw>/p2p-circuit/…` over
 * an existing gateway connection, so a full relayed address needs a connection to its gateway first. A target
 * (a station) may list several gateways, some of them dead: gateways we are connected to are used as they are;
 * only when there is none are the others dialled, all at once, each for at most `gatewayDialTimeoutMs`.
 * @throws when no address is left
 */
export async function reachableCircuits (node: Libp2p, addresses: Multiaddr[], options: { gatewayDialTimeoutMs: number, signal: AbortSignal }): Promise<Multiaddr[]> {
  const direct = addresses.filter(ma => splitRelayAddress(ma) == null)
  const relayed = addresses.flatMap(ma => {
    const split = splitRelayAddress(ma)
    const gateway = split?.gateway.getComponents().findLast(c => c.name === 'p2p')?.value
    return split == null ? [] : [{ ...split, gatewayId: gateway }]
  })
  const connected = (id: string | undefined): boolean => id != null && node.getConnections(peerIdFromString(id)).some(conn => conn.status === 'open')
  let usable = relayed.filter(r => connected(r.gatewayId))
  if (usable.length === 0 && relayed.length > 0) {
    const signal = AbortSignal.any([options.signal, AbortSignal.timeout(options.gatewayDialTimeoutMs)])
    const dialed = await Promise.all(relayed.map(async r => node.dial(r.gateway, { signal }).then(() => true, () => false)))
    usable = relayed.filter((_, i) => dialed[i])
  }
  const circuits = [...new Map(usable.map(r => [r.circuit.toString(), r.circuit])).values()]
  if (direct.length + circuits.length === 0) throw new Error(`no gateway on the way to ${addresses.map(String).join(', ')} could be reached`)
  return [...direct, ...circuits]
}
