import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import { reservationStoreOf } from './reservation-store.js'

/**
 * Circuits to allowlisted peers get no duration or data limit (relay-only deployments keep relayed sessions
 * for hours). The stock relay server applies one default limit to everybody and offers no per-peer hook, so
 * this wraps its reservation store: an empty limit is what the store and the client both read as "unlimited".
 */
export function allowUnlimitedCircuits (relay: CircuitRelayService, allowlist: string[]): void {
  if (allowlist.length === 0) return
  const allowed = new Set(allowlist)
  const store = reservationStoreOf(relay)
  const reserve = store.reserve.bind(store)
  store.reserve = (peer, addr, limit) => reserve(peer, addr, allowed.has(peer.toString()) ? {} : limit)
}
