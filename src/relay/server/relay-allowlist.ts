import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { Connection } from '@libp2p/interface'
import { reservationStoreOf } from './reservation-store.js'

/** What natmesh touches of the relay server's private CONNECT handler. */
interface ConnectHandler {
  handleConnect: (args: { connection: Connection }, options: unknown) => Promise<void>
}

/**
 * Circuits to and from allowlisted peers get no duration or data limit (relay-only deployments keep relayed
 * sessions for hours). The stock relay server takes a circuit's limit from the target's reservation and offers
 * no per-peer hook, so this wraps it in two places:
 * - to a listed peer: its reservation is stored with an empty limit, which the store and the client both read
 *   as "unlimited";
 * - from a listed peer: while the CONNECT handler looks up the target's reservation (synchronously, before its
 *   first await), the lookup answers without the limit.
 */
export function allowUnlimitedCircuits (relay: CircuitRelayService, allowlist: string[]): void {
  if (allowlist.length === 0) return
  const allowed = new Set(allowlist)
  const store = reservationStoreOf(relay)
  const reserve = store.reserve.bind(store)
  store.reserve = (peer, addr, limit) => reserve(peer, addr, allowed.has(peer.toString()) ? {} : limit)

  const connect = relay as unknown as Partial<ConnectHandler>
  if (typeof connect.handleConnect !== 'function') {
    throw new Error('this @libp2p/circuit-relay-v2 version has no CONNECT handler natmesh can work with')
  }
  const handleConnect = connect.handleConnect.bind(relay)
  const get = store.get.bind(store)
  connect.handleConnect = async (args, options) => {
    if (!allowed.has(args.connection.remotePeer.toString())) return handleConnect(args, options)
    store.get = (peer) => {
      const reservation = get(peer)
      return reservation == null ? undefined : { ...reservation, limit: undefined }
    }
    try {
      return handleConnect(args, options)
    } finally {
      store.get = get
    }
  }
}
