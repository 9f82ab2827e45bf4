import type { CircuitRelayService, Limit } from '@libp2p/circuit-relay-v2'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** What natmesh touches of @libp2p/circuit-relay-v2's private reservation store. */
export interface ReservationStoreInternals {
  reserve: (peer: PeerId, addr: Multiaddr, limit?: Limit) => unknown
  get: (peer: PeerId) => { signal: AbortSignal & { clear?: () => void } } | undefined
  removeReservation: (peer: PeerId) => void
}

/** The relay server's reservation store; it offers no public hook, so natmesh reaches it this way. */
export function reservationStoreOf (relay: CircuitRelayService): ReservationStoreInternals {
  const store = (relay as unknown as { reservationStore?: ReservationStoreInternals }).reservationStore
  if (store == null || typeof store.reserve !== 'function' || typeof store.get !== 'function') {
    throw new Error('this @libp2p/circuit-relay-v2 version has no reservation store natmesh can work with')
  }
  return store
}

/** An abort signal that fires `ms` after its last reset. */
function renewableSignal (ms: number): AbortSignal & { reset: (ms: number) => void, clear: () => void } {
  const controller = new AbortController()
  let timer: NodeJS.Timeout | undefined
  const reset = (after: number): void => {
    clearTimeout(timer)
    timer = setTimeout(() => { controller.abort(new Error('reservation expired')) }, after)
    timer.unref()
  }
  reset(ms)
  return Object.assign(controller.signal, { reset, clear: () => { clearTimeout(timer) } })
}

/**
 * Makes renewals extend reservations. The relay server's expiry signal (retimeable-signal) leaves the timer of
 * each earlier renewal running, so a reservation lapses one TTL after its first renewal however often it is
 * renewed, and the circuits to that peer end with it (measured: a 6 s reservation renewed every 3 s lapsed 6 s
 * after its first renewal). New reservations get a signal whose reset really replaces the timer.
 */
export function renewReservationsProperly (relay: CircuitRelayService, ttlMs: number): void {
  const store = reservationStoreOf(relay)
  const reserve = store.reserve.bind(store)
  store.reserve = (peer, addr, limit) => {
    const isNew = store.get(peer) == null
    const result = reserve(peer, addr, limit)
    const reservation = store.get(peer)
    if (isNew && reservation != null) {
      // the store's own timer would delete the reservation one TTL from now: stop it, ours takes over
      reservation.signal.clear?.()
      const signal = renewableSignal(ttlMs)
      signal.addEventListener('abort', () => {
        // a reservation released earlier and made anew has a signal of its own
        if (store.get(peer)?.signal === signal) store.removeReservation(peer)
      }, { once: true })
      reservation.signal = signal
    }
    return result
  }
}

/**
 * Frees the slots of peers that have gone. The relay server keeps a reservation until its TTL (2 h) whether or
 * not its peer is still connected, so churn (or throwaway keys) would fill the store with departed peers and
 * lock everybody else out. A peer without a connection for `graceMs` loses its reservation; one that
 * reconnects within the grace keeps it, so a brief network change costs no slot. Returns the stop function.
 */
export function releaseReservationsOfDepartedPeers (node: Libp2p, relay: CircuitRelayService, graceMs: number, onReleased: (peer: PeerId) => void): () => void {
  const store = reservationStoreOf(relay)
  const timers = new Map<string, NodeJS.Timeout>()
  const cancel = (peer: PeerId): void => {
    clearTimeout(timers.get(peer.toString()))
    timers.delete(peer.toString())
  }
  const release = (peer: PeerId): void => {
    timers.delete(peer.toString())
    const reservation = store.get(peer)
    if (reservation == null || node.getConnections(peer).length > 0) return
    reservation.signal.clear?.()
    store.removeReservation(peer)
    onReleased(peer)
  }
  const onDisconnect = (evt: CustomEvent<PeerId>): void => {
    const peer = evt.detail
    if (store.get(peer) == null) return
    cancel(peer)
    const timer = setTimeout(() => { release(peer) }, graceMs)
    timer.unref()
    timers.set(peer.toString(), timer)
  }
  const onConnect = (evt: CustomEvent<PeerId>): void => { cancel(evt.detail) }
  node.addEventListener('peer:disconnect', onDisconnect)
  node.addEventListener('peer:connect', onConnect)
  return () => {
    node.removeEventListener('peer:disconnect', onDisconnect)
    node.removeEventListener('peer:connect', onConnect)
    for (const timer of timers.values()) clearTimeout(timer)
    timers.clear()
  }
}
