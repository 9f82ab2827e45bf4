import type { CircuitRelayService, Limit } from '@libp2p/circuit-relay-v2'
import type { Libp2p, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { ipOf } from './admission.js'

/** What natmesh touches of @libp2p/circuit-relay-v2's private reservation store. */
export interface ReservationStoreInternals {
  reserve: (peer: PeerId, addr: Multiaddr, limit?: Limit) => unknown
  get: (peer: PeerId) => StoredReservation | undefined
  removeReservation: (peer: PeerId) => void
  maxReservations: number
  reservations: Iterable<[PeerId, StoredReservation]> & { size: number }
}

interface StoredReservation {
  addr: Multiaddr
  expiry: Date
  limit?: Limit
  signal: AbortSignal & { clear?: () => void, end?: (reason: Error) => void }
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
function renewableSignal (ms: number): AbortSignal & { reset: (ms: number) => void, clear: () => void, end: (reason: Error) => void } {
  const controller = new AbortController()
  let timer: NodeJS.Timeout | undefined
  const reset = (after: number): void => {
    clearTimeout(timer)
    timer = setTimeout(() => { controller.abort(new Error('reservation expired')) }, after)
    timer.unref()
  }
  reset(ms)
  const clear = (): void => { clearTimeout(timer) }
  const end = (reason: Error): void => {
    clear()
    controller.abort(reason)
  }
  return Object.assign(controller.signal, { reset, clear, end })
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

/**
 * Shares a full relay fairly between source IPs. Any IP may fill a relay nobody else wants (a carrier NAT puts
 * thousands of users behind one address), but when it is full, a newcomer from an IP that holds fewer
 * reservations than the busiest IP takes that IP's newest reservation (its circuits end with it). So one source
 * reserving with throwaway keys cannot lock the others out: they win their slots back one by one, and its
 * own newcomers are refused while it is the busiest.
 */
export function shareReservationsFairly (relay: CircuitRelayService, onEvicted: (peer: PeerId, ip: string) => void): void {
  const store = reservationStoreOf(relay)
  const reserve = store.reserve.bind(store)
  store.reserve = (peer, addr, limit) => {
    const ip = ipOf(addr)
    if (ip != null && store.reservations.size >= store.maxReservations && store.get(peer) == null) {
      const victim = newestOfBusiestIp(store, ip)
      if (victim != null) {
        const reservation = store.get(victim)
        const reason = new Error('reservation given to a peer from a less busy address')
        if (reservation?.signal.end != null) reservation.signal.end(reason)
        else store.removeReservation(victim)
        onEvicted(victim, ip)
      }
    }
    return reserve(peer, addr, limit)
  }
}

/** the newest reservation of the IP holding the most, if that IP holds at least two more than `newcomerIp` */
function newestOfBusiestIp (store: ReservationStoreInternals, newcomerIp: string): PeerId | undefined {
  const byIp = new Map<string, { count: number, newest: PeerId, newestExpiry: number }>()
  for (const [peer, reservation] of store.reservations) {
    const ip = ipOf(reservation.addr) ?? ''
    const entry = byIp.get(ip)
    const expiry = reservation.expiry.getTime()
    if (entry == null) byIp.set(ip, { count: 1, newest: peer, newestExpiry: expiry })
    else {
      entry.count++
      if (expiry >= entry.newestExpiry) Object.assign(entry, { newest: peer, newestExpiry: expiry })
    }
  }
  let busiest: { count: number, newest: PeerId } | undefined
  for (const entry of byIp.values()) if (busiest == null || entry.count > busiest.count) busiest = entry
  const newcomerCount = byIp.get(newcomerIp)?.count ?? 0
  return busiest != null && busiest.count >= newcomerCount + 2 ? busiest.newest : undefined
}
