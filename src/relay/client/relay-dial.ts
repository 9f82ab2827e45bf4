import { peerIdFromString } from '@libp2p/peer-id'
import type { Connection, Libp2p } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { pingOver } from '../../core/ping-path.js'
import { splitRelayAddress } from '../../core/relay-address.js'

/** how long the gateways on the way get to answer a ping before the ones that have not are put last */
const GATEWAY_PROBE_MS = 2000

interface Relayed { circuit: Multiaddr, gateway: Multiaddr, gatewayId?: string }

/**
 * Turns target addresses into what libp2p can dial, best first. libp2p's relay transport dials
 * `/p2p/<gw>/p2p-circuit/…` over an existing gateway connection, so a full relayed address needs a connection to
 * its gateway first. A target (a station) may list several gateways, some of them dead: libp2p tries addresses one
 * after the other, 6 s each, so the order matters. Gateways we are connected to get one ping each, all at once, and
 * are tried in the order they answer (a dead one whose connection still looks open comes last); only when we are
 * connected to none are the others dialled, all at once, each for at most `gatewayDialTimeoutMs`.
 * @throws when no address is left
 */
export async function reachableCircuits (node: Libp2p, addresses: Multiaddr[], options: { gatewayDialTimeoutMs: number, signal: AbortSignal }): Promise<Multiaddr[]> {
  const direct = addresses.filter(ma => splitRelayAddress(ma) == null)
  const relayed: Relayed[] = addresses.flatMap(ma => {
    const split = splitRelayAddress(ma)
    return split == null ? [] : [{ ...split, gatewayId: split.gateway.getComponents().findLast(c => c.name === 'p2p')?.value }]
  })
  const connectionTo = (r: Relayed): Connection | undefined => r.gatewayId == null
    ? undefined
    : node.getConnections(peerIdFromString(r.gatewayId)).find(conn => conn.status === 'open')
  // a gateway's UDP and TCP addresses lead to the same circuit: probe each gateway once
  const viaConnected = [...new Map(relayed.filter(r => connectionTo(r) != null).map(r => [r.circuit.toString(), r])).values()]
  let usable = await fastestFirst(viaConnected, connectionTo)
  if (usable.length === 0 && relayed.length > 0) {
    const signal = AbortSignal.any([options.signal, AbortSignal.timeout(options.gatewayDialTimeoutMs)])
    const dialed = await Promise.all(relayed.map(async r => node.dial(r.gateway, { signal }).then(() => true, () => false)))
    usable = relayed.filter((_, i) => dialed[i])
  }
  const circuits = [...new Map(usable.map(r => [r.circuit.toString(), r.circuit])).values()]
  if (direct.length + circuits.length === 0) throw new Error(`no gateway on the way to ${addresses.map(String).join(', ')} could be reached`)
  return [...direct, ...circuits]
}

/** Pings each gateway once; resolves when the first answers (or after GATEWAY_PROBE_MS) with answering ones first. */
async function fastestFirst (relayed: Relayed[], connectionTo: (r: Relayed) => Connection | undefined): Promise<Relayed[]> {
  if (relayed.length < 2) return relayed
  const answered: Relayed[] = []
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, GATEWAY_PROBE_MS)
    for (const r of relayed) {
      const connection = connectionTo(r)
      if (connection == null) continue
      pingOver(connection, GATEWAY_PROBE_MS).then(() => {
        answered.push(r)
        clearTimeout(timer)
        resolve()
      }, () => {})
    }
  })
  return [...answered, ...relayed.filter(r => !answered.includes(r))]
}
