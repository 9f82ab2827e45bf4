import type { ObservedAddress, ObservedPeer } from '../address-book.js'
import type { NatType } from '../../nat/types.js'
import type { MappingKind } from '../../nat/mapping-profile.js'
import type { PunchOutcome } from '../../punch-report/wire.js'
import { pairKey } from './punch-history.js'
import type { PunchHistory, PunchMinute, PunchRecord } from './punch-history.js'
import type { RelayedCircuit } from './relayed-circuits.js'

export interface DashboardReservation {
  peer: string
  expiresAt: string
}

export interface DashboardPeer {
  peerId: string
  connected: boolean
  /** the public ip:port per transport the gateway sees */
  addresses: ObservedAddress[]
  /** what the peer said of its NAT in its last punch report */
  natType?: NatType
  mapping?: MappingKind
  natReportedAt?: string
  /** when its relay reservation here runs out */
  reservationExpiresAt?: string
  /** relayed connections through this gateway it opened, and that were opened to it */
  circuitsOut: number
  circuitsIn: number
  /** allocations it holds on this gateway's TURN server (coturn), by the identity its credential names */
  turnAllocations: number
}

export type DashboardPathKind = 'direct' | 'relay' | 'none'

/** A pair of peers and the path between them as far as this gateway can tell */
export interface DashboardPath {
  a: string
  b: string
  /** direct: the last punch report says it succeeded; relay: a relayed connection through here is open; none: neither */
  path: DashboardPathKind
  /** open relayed connections through this gateway between the two */
  circuits: number
  relayedSince?: string
  lastPunch?: PunchRecord
}

export interface DashboardSnapshot {
  gateway: {
    peerId: string
    addresses: string[]
    uptimeS: number
    /** off: not configured; up/down: coturn's state */
    turn: 'off' | 'up' | 'down'
  }
  totals: {
    peers: number
    connectedPeers: number
    reservations: number
    circuits: number
    relayedBytes: number
    /** allocations coturn holds, whoever for; null while TURN is off */
    turnAllocations: number | null
    punches: Record<PunchOutcome, number>
  }
  peers: DashboardPeer[]
  paths: DashboardPath[]
  punches: { recent: PunchRecord[], perMinute: PunchMinute[] }
  generatedAt: string
}

export interface SnapshotSources {
  gateway: DashboardSnapshot['gateway']
  peers: ObservedPeer[]
  reservations: DashboardReservation[]
  circuits: RelayedCircuit[]
  relayedBytes: number
  /** the identity each TURN allocation's credential names; undefined while TURN is off */
  turnAllocations?: string[]
  punches: PunchHistory
}

/** Joins what the gateway knows (address book, reservations, circuits, punch reports) into the dashboard's view. */
export function dashboardSnapshot (sources: SnapshotSources, now = Date.now()): DashboardSnapshot {
  const reservations = new Map(sources.reservations.map(r => [r.peer, r.expiresAt]))
  const circuitsOut = countBy(sources.circuits.map(c => c.source))
  const circuitsIn = countBy(sources.circuits.map(c => c.destination))
  const turnAllocations = countBy(sources.turnAllocations ?? [])

  // a peer holding a reservation is listed even before the address book has it (a relayed-only connection)
  const known = new Map(sources.peers.map(p => [p.peerId, p]))
  for (const peer of reservations.keys()) {
    if (!known.has(peer)) known.set(peer, { peerId: peer, connected: true, addresses: [] })
  }
  const peers = [...known.values()].map((peer): DashboardPeer => {
    const nat = sources.punches.natOf(peer.peerId)
    const expiresAt = reservations.get(peer.peerId)
    return {
      peerId: peer.peerId,
      connected: peer.connected,
      addresses: peer.addresses,
      ...(nat?.natType != null ? { natType: nat.natType } : {}),
      ...(nat?.mapping != null ? { mapping: nat.mapping } : {}),
      ...(nat != null ? { natReportedAt: nat.reportedAt } : {}),
      ...(expiresAt != null ? { reservationExpiresAt: expiresAt } : {}),
      circuitsOut: circuitsOut.get(peer.peerId) ?? 0,
      circuitsIn: circuitsIn.get(peer.peerId) ?? 0,
      turnAllocations: turnAllocations.get(peer.peerId) ?? 0
    }
  })

  const paths = new Map<string, DashboardPath>()
  const pathOf = (a: string, b: string): DashboardPath => {
    const key = pairKey(a, b)
    const existing = paths.get(key)
    if (existing != null) return existing
    const [first, second] = key.split(' ') as [string, string]
    const created: DashboardPath = { a: first, b: second, path: 'none', circuits: 0 }
    paths.set(key, created)
    return created
  }
  // oldest first, so relayedSince ends up the oldest open circuit's time
  for (const circuit of [...sources.circuits].reverse()) {
    const path = pathOf(circuit.source, circuit.destination)
    path.circuits++
    path.relayedSince ??= circuit.openedAt
  }
  for (const punch of sources.punches.lastPerPair()) {
    if (punch.remotePeer != null) pathOf(punch.peer, punch.remotePeer).lastPunch = punch
  }
  for (const path of paths.values()) {
    path.path = path.lastPunch?.outcome === 'success' ? 'direct' : path.circuits > 0 ? 'relay' : 'none'
  }

  return {
    gateway: sources.gateway,
    totals: {
      peers: peers.length,
      connectedPeers: peers.filter(p => p.connected).length,
      reservations: sources.reservations.length,
      circuits: sources.circuits.length,
      relayedBytes: sources.relayedBytes,
      turnAllocations: sources.turnAllocations?.length ?? null,
      punches: { ...sources.punches.totals }
    },
    peers,
    paths: [...paths.values()],
    punches: { recent: sources.punches.recent(), perMinute: sources.punches.timeline(now) },
    generatedAt: new Date(now).toISOString()
  }
}

function countBy (keys: string[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const key of keys) counts.set(key, (counts.get(key) ?? 0) + 1)
  return counts
}
