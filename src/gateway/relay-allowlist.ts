import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { Limit } from '@libp2p/circuit-relay-v2'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'

interface ReservationStoreInternals {
  reserve: (peer: PeerId, addr: Multiaddr, limit?: Limit) => unknown
}

/**
 * Circuits to allowlisted peers get no duration or data limit (relay-only deployments keep relayed sessions
 * for hours). The stock relay server applies one default limit to everybody and offers no per-peer hook, so
 * this wraps its reservation store: an empty limit is what the store and the client both read as "unlimited".
 */
export function allowUnlimitedCircuits (relay: CircuitRelayService, allowlist: string[]): void {
  if (allowlist.length === 0) return
  const allowed = new Set(allowlist)
  const store = (relay as unknown as { reservationStore?: ReservationStoreInternals }).reservationStore
  if (store == null || typeof store.reserve !== 'function') {
    throw new Error('this @libp2p/circuit-relay-v2 version has no reservation store to apply the relay allowlist to')
  }
  const reserve = store.reserve.bind(store)
  store.reserve = (peer, addr, limit) => reserve(peer, addr, allowed.has(peer.toString()) ? {} : limit)
}
