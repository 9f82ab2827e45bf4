import type { Registry } from 'prom-client'
import { PUNCH_OUTCOMES, PUNCH_STRATEGIES } from '../punch-report/wire.js'
import type { OverlayTransport, Path } from './events.js'
import type { NatmeshPeer } from './peer.js'
import { perLabel, scrapedCounter, scrapedGauge } from '../metrics/series.js'

const PATHS: readonly Path[] = ['relay', 'direct']
const SESSION_PATHS: ReadonlyArray<Path | 'none'> = ['relay', 'direct', 'none']
const LINK_STATES: ReadonlyArray<OverlayTransport | 'none'> = ['udx', 'tcp', 'none']

/** A peer's own series for its /metrics, read from the peer on every scrape */
export function registerPeerMetrics (registry: Registry, peer: NatmeshPeer): void {
  scrapedGauge(registry, {
    name: 'natmesh_peer_connections',
    help: 'Open connections to other peers (gateways not counted), by path',
    labelNames: ['path'],
    read: () => { const open = peer.openConnections(); return perLabel('path', PATHS, path => open[path]) }
  })
  scrapedGauge(registry, {
    name: 'natmesh_peer_sessions',
    help: 'Open sessions, by the path they currently use (none while one resumes)',
    labelNames: ['path'],
    read: () => {
      const sessions = peer.sessionStats()
      return perLabel('path', SESSION_PATHS, path => sessions.filter(session => session.path === path).length)
    }
  })
  scrapedCounter(registry, { name: 'natmesh_peer_sessions_opened_total', help: 'Sessions opened or accepted since start', read: () => [{ labels: {}, value: peer.sessionTotals().opened }] })
  scrapedCounter(registry, { name: 'natmesh_peer_session_migrations_total', help: 'Times a session moved to another path (relay to direct, or a resume after a loss)', read: () => [{ labels: {}, value: peer.sessionTotals().migrations }] })
  scrapedCounter(registry, {
    name: 'natmesh_peer_session_bytes_total',
    help: 'Message bytes sessions sent (resends included) and received, by path',
    labelNames: ['path'],
    read: () => { const totals = peer.sessionTotals(); return perLabel('path', PATHS, path => path === 'relay' ? totals.bytesViaRelay : totals.bytesViaDirect) }
  })
  scrapedCounter(registry, {
    name: 'natmesh_peer_hole_punches_total',
    help: 'Hole punches this peer finished (all attempts to one peer count once), by outcome and strategy',
    labelNames: ['outcome', 'strategy'],
    read: () => {
      const counts = peer.holePunchCounts()
      return PUNCH_OUTCOMES.flatMap(outcome => PUNCH_STRATEGIES.map(strategy => ({
        labels: { outcome, strategy },
        value: counts.find(count => count.outcome === outcome && count.strategy === strategy)?.count ?? 0
      })))
    }
  })
  scrapedGauge(registry, {
    name: 'natmesh_peer_reservations',
    help: 'Gateways holding a relay reservation for this peer',
    read: () => [{ labels: {}, value: peer.gateways().filter(gateway => gateway.relayAddresses.length > 0).length }]
  })
  scrapedGauge(registry, {
    name: 'natmesh_peer_gateway_links',
    help: 'Gateways this peer keeps a link to, by the overlay the link runs on (none while it reconnects)',
    labelNames: ['transport'],
    read: () => { const gateways = peer.gateways(); return perLabel('transport', LINK_STATES, transport => gateways.filter(gateway => gateway.transport === transport).length) }
  })
}
