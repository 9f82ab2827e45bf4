import type { PunchOutcome, PunchStrategyKind } from '../punch-report/wire.js'
import type { Path } from './events.js'
import type { PunchCost } from '../dcutr/hole-puncher.js'
import type { CandidateType } from '../ice/selected-pair.js'

export interface PeerConnectionStats {
  peer: string
  /** the best open path: direct when there is one */
  path: Path | 'none'
  remoteAddr?: string
  rttMs?: number
  bytesSent: number
  bytesReceived: number
  /** time from the relayed connection to the direct one, when a hole punch succeeded */
  directAfterMs?: number
  holePunchAttempts: number
  /** how the last hole punch went about it and what it cost (sockets, probes, ms) */
  lastHolePunch?: { strategy?: PunchStrategyKind, outcome: 'success' | 'failure' | 'skipped', cost?: PunchCost }
  /** ice mode: how the best path's selected candidate pair carries data (host, srflx, or relay via TURN) */
  candidateType?: CandidateType
}

interface Entry extends PeerConnectionStats {
  open: Map<string, { path: Path, remoteAddr: string, candidateType?: CandidateType }>
}

/** Per remote peer: which paths are open, how fast, and how many bytes natmesh's own protocols moved. */
export interface HolePunchCount {
  outcome: PunchOutcome
  strategy: PunchStrategyKind
  count: number
}

export class ConnectionStats {
  private readonly peers = new Map<string, Entry>()
  /** finished hole punches since start, keyed `outcome/strategy` */
  private readonly punches = new Map<string, HolePunchCount>()

  opened (peer: string, connectionId: string, path: Path, remoteAddr: string): void {
    this.entry(peer).open.set(connectionId, { path, remoteAddr })
    this.refreshPath(peer)
  }

  closed (peer: string, connectionId: string): void {
    const entry = this.peers.get(peer)
    if (entry == null) return
    entry.open.delete(connectionId)
    this.refreshPath(peer)
  }

  /** the candidate pair ICE selected for a WebRTC connection */
  candidatePair (peer: string, connectionId: string, candidateType: CandidateType): void {
    const open = this.peers.get(peer)?.open.get(connectionId)
    if (open == null) return
    open.candidateType = candidateType
    this.refreshPath(peer)
  }

  rtt (peer: string, rttMs: number): void {
    this.entry(peer).rttMs = rttMs
  }

  holePunch (peer: string, attempts: number, directAfterMs?: number, last?: PeerConnectionStats['lastHolePunch']): void {
    const entry = this.entry(peer)
    entry.holePunchAttempts += attempts
    if (directAfterMs != null) entry.directAfterMs = directAfterMs
    if (last == null) return
    entry.lastHolePunch = last
    // a punch with no strategy was a plain DCUtR one
    const strategy = last.strategy ?? 'dcutr'
    const key = `${last.outcome}/${strategy}`
    const count = this.punches.get(key) ?? { outcome: last.outcome, strategy, count: 0 }
    count.count++
    this.punches.set(key, count)
  }

  /** finished hole punches since start, by outcome and strategy */
  holePunchCounts (): HolePunchCount[] {
    return [...this.punches.values()].map(count => ({ ...count }))
  }

  bytes (peer: string, sent: number, received: number): void {
    const entry = this.entry(peer)
    entry.bytesSent += sent
    entry.bytesReceived += received
  }

  get (peer: string): PeerConnectionStats | undefined {
    const entry = this.peers.get(peer)
    return entry == null ? undefined : toStats(entry)
  }

  list (): PeerConnectionStats[] {
    return [...this.peers.values()].map(toStats)
  }

  /** open connections to other peers (gateways are not tracked here), by path */
  openByPath (): Record<Path, number> {
    const counts: Record<Path, number> = { relay: 0, direct: 0 }
    for (const entry of this.peers.values()) {
      for (const { path } of entry.open.values()) counts[path]++
    }
    return counts
  }

  private entry (peer: string): Entry {
    let entry = this.peers.get(peer)
    if (entry == null) {
      entry = { peer, path: 'none', bytesSent: 0, bytesReceived: 0, holePunchAttempts: 0, open: new Map() }
      this.peers.set(peer, entry)
    }
    return entry
  }

  private refreshPath (peer: string): void {
    const entry = this.entry(peer)
    const open = [...entry.open.values()]
    const best = open.find(c => c.path === 'direct') ?? open[0]
    entry.path = best?.path ?? 'none'
    entry.remoteAddr = best?.remoteAddr
    entry.candidateType = best?.candidateType
  }
}

function toStats ({ open: _open, ...stats }: Entry): PeerConnectionStats {
  return { ...stats }
}
