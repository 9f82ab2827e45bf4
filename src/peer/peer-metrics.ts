import { Counter, Gauge } from 'prom-client'
import type { Registry } from 'prom-client'
import type { PunchOutcome, PunchStrategyKind } from '../punch-report/punch-reports.js'
import type { OverlayTransport, Path } from './events.js'
import type { NatmeshPeer } from './peer.js'

const PATHS: readonly Path[] = ['relay', 'direct']
const OUTCOMES: readonly PunchOutcome[] = ['success', 'failure', 'skipped']
const STRATEGIES: readonly PunchStrategyKind[] = ['dcutr', 'birthday', 'skip']
const LINK_STATES: ReadonlyArray<OverlayTransport | 'none'> = ['udx', 'tcp', 'none']

/** A peer's own series for its /metrics, read from the peer on every scrape */
export function registerPeerMetrics (registry: Registry, peer: NatmeshPeer): void {
  const registers = [registry]

  new Gauge({
    name: 'natmesh_peer_connections',
    help: 'Open connections to other peers (gateways not counted), by path',
    labelNames: ['path'] as const,
    registers,
    collect () {
      const open = peer.openConnections()
      for (const path of PATHS) this.set({ path }, open[path])
    }
  })
  new Gauge({
    name: 'natmesh_peer_sessions',
    help: 'Open sessions, by the path they currently use (none while one resumes)',
    labelNames: ['path'] as const,
    registers,
    collect () {
      const counts: Record<Path | 'none', number> = { relay: 0, direct: 0, none: 0 }
      for (const session of peer.sessionStats()) counts[session.path]++
      for (const [path, count] of Object.entries(counts)) this.set({ path }, count)
    }
  })
  monotonic(registry, 'natmesh_peer_sessions_opened_total', 'Sessions opened or accepted since start', () => peer.sessionTotals().opened)
  monotonic(registry, 'natmesh_peer_session_migrations_total', 'Times a session moved to another path (relay to direct, or a resume after a loss)', () => peer.sessionTotals().migrations)
  new Counter({
    name: 'natmesh_peer_session_bytes_total',
    help: 'Message bytes sessions sent (resends included) and received, by path',
    labelNames: ['path'] as const,
    registers,
    collect () {
      const totals = peer.sessionTotals()
      this.reset()
      this.inc({ path: 'relay' }, totals.bytesViaRelay)
      this.inc({ path: 'direct' }, totals.bytesViaDirect)
    }
  })

  new Counter({
    name: 'natmesh_peer_hole_punches_total',
    help: 'Hole punches this peer finished (all attempts to one peer count once), by outcome and strategy',
    labelNames: ['outcome', 'strategy'] as const,
    registers,
    collect () {
      this.reset()
      // every series from 0, so rate() and absent() work before the first punch
      for (const outcome of OUTCOMES) {
        for (const strategy of STRATEGIES) this.inc({ outcome, strategy }, 0)
      }
      for (const { outcome, strategy, count } of peer.holePunchCounts()) this.inc({ outcome, strategy }, count)
    }
  })

  new Gauge({
    name: 'natmesh_peer_reservations',
    help: 'Gateways holding a relay reservation for this peer',
    registers,
    collect () { this.set(peer.gateways().filter(gateway => gateway.relayAddresses.length > 0).length) }
  })
  new Gauge({
    name: 'natmesh_peer_gateway_links',
    help: 'Gateways this peer keeps a link to, by the overlay the link runs on (none while it reconnects)',
    labelNames: ['transport'] as const,
    registers,
    collect () {
      const gateways = peer.gateways()
      for (const transport of LINK_STATES) this.set({ transport }, gateways.filter(gateway => gateway.transport === transport).length)
    }
  })
}

/** a counter that shows a total the peer keeps (only ever growing) */
function monotonic (registry: Registry, name: string, help: string, total: () => number): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect () {
      this.reset()
      this.inc(total())
    }
  })
}
