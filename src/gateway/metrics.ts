import { Counter, Histogram } from 'prom-client'
import type { OverlayTransport } from '../core/path.js'
import { PUNCH_OUTCOMES, PUNCH_STRATEGIES } from '../punch-report/wire.js'
import type { PunchReportFromPeer } from '../punch-report/wire.js'
import type { Registry } from 'prom-client'
import { perLabel, scrapedCounter, scrapedGauge } from '../metrics/series.js'
import { FORWARD_PATH_KINDS } from '../relay/forward/server.js'
import type { ForwardPathKind } from '../relay/forward/server.js'

const TRANSPORTS: readonly OverlayTransport[] = ['udx', 'tcp']
const METRIC_NAMES = [
  'natmesh_relay_reservations', 'natmesh_relay_active_circuits', 'natmesh_connected_peers', 'natmesh_relayed_bytes_total',
  'natmesh_relay_forwarded_circuits_total',
  'natmesh_hole_punch_outcomes_total', 'natmesh_hole_punch_strategy_total', 'natmesh_hole_punch_sockets_total',
  'natmesh_hole_punch_probes_total', 'natmesh_hole_punch_duration_seconds'
]

export interface GatewayMetricsInit {
  /** the gateway's own registry, where @libp2p/prometheus-metrics puts libp2p's metrics too */
  registry: Registry
  /** the callbacks below are read on every scrape, so this module needs no libp2p internals */
  reservations: () => number
  activeCircuits: () => number
  connectedPeers: () => Record<OverlayTransport, number>
  /** bytes relayed so far (cumulative); read on every scrape */
  relayedBytes: () => Promise<number> | number
  /** circuits opened so far as forwarded circuits (udx joins them, the gateway reads none of their bytes), by path */
  forwardedCircuits: () => Record<ForwardPathKind, number>
}

/** The gateway's own Prometheus metrics, next to libp2p's */
export class GatewayMetrics {
  private readonly registry: Registry
  private readonly holePunchOutcomes: Counter<'outcome' | 'transport'>
  private readonly holePunchStrategies: Counter<'strategy' | 'outcome'>
  private readonly holePunchSockets: Counter<'strategy'>
  private readonly holePunchProbes: Counter<'strategy'>
  private readonly holePunchDuration: Histogram<'strategy' | 'outcome'>

  constructor (init: GatewayMetricsInit) {
    this.registry = init.registry
    const registers = [this.registry]

    scrapedGauge(this.registry, { name: 'natmesh_relay_reservations', help: 'Relay reservations currently held by peers', read: () => [{ labels: {}, value: init.reservations() }] })
    scrapedGauge(this.registry, { name: 'natmesh_relay_active_circuits', help: 'Relayed connections currently open through this gateway', read: () => [{ labels: {}, value: init.activeCircuits() }] })
    scrapedGauge(this.registry, {
      name: 'natmesh_connected_peers',
      help: 'Peers with an open connection to this gateway, by overlay transport',
      labelNames: ['transport'],
      read: () => { const counts = init.connectedPeers(); return perLabel('transport', TRANSPORTS, transport => counts[transport]) }
    })
    scrapedCounter(this.registry, {
      name: 'natmesh_relayed_bytes_total',
      help: 'Bytes relayed between peers through this gateway (both directions)',
      read: async () => [{ labels: {}, value: await init.relayedBytes() }]
    })
    scrapedCounter(this.registry, {
      name: 'natmesh_relay_forwarded_circuits_total',
      help: 'Relayed connections opened as forwarded circuits (joined inside udx, not decrypted by the gateway), by path: in a relay worker thread or on the main event loop',
      labelNames: ['path'],
      read: () => { const counts = init.forwardedCircuits(); return perLabel('path', FORWARD_PATH_KINDS, path => counts[path]) }
    })
    this.holePunchOutcomes = new Counter({
      name: 'natmesh_hole_punch_outcomes_total',
      help: 'Hole punch outcomes reported by peers',
      labelNames: ['outcome', 'transport'] as const,
      registers
    })

    this.holePunchStrategies = new Counter({
      name: 'natmesh_hole_punch_strategy_total',
      help: 'Hole punches reported by peers, by strategy (dcutr, birthday for a symmetric NAT, skip when both are symmetric) and outcome',
      labelNames: ['strategy', 'outcome'] as const,
      registers
    })
    this.holePunchSockets = new Counter({
      name: 'natmesh_hole_punch_sockets_total',
      help: 'Extra sockets peers opened for hole punches (birthday punches open many)',
      labelNames: ['strategy'] as const,
      registers
    })
    this.holePunchProbes = new Counter({
      name: 'natmesh_hole_punch_probes_total',
      help: 'Probe datagrams peers sent for birthday punches (probes and sprays)',
      labelNames: ['strategy'] as const,
      registers
    })
    this.holePunchDuration = new Histogram({
      name: 'natmesh_hole_punch_duration_seconds',
      help: 'How long hole punches took, from the first attempt to the outcome, as reported by peers',
      labelNames: ['strategy', 'outcome'] as const,
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30],
      registers
    })

    // start every series at 0 so rate() and absent() work before the first report
    for (const outcome of PUNCH_OUTCOMES) {
      for (const transport of TRANSPORTS) this.holePunchOutcomes.inc({ outcome, transport }, 0)
      for (const strategy of PUNCH_STRATEGIES) this.holePunchStrategies.inc({ strategy, outcome }, 0)
    }
    for (const strategy of PUNCH_STRATEGIES) {
      this.holePunchSockets.inc({ strategy }, 0)
      this.holePunchProbes.inc({ strategy }, 0)
    }
  }

  /** `transport` comes from a peer's report: anything but a known overlay is counted as "other" to bound label values */
  holePunchReported (report: Pick<PunchReportFromPeer, 'outcome' | 'transport' | 'strategy' | 'sockets' | 'probes' | 'durationMs'>): void {
    const { outcome, transport } = report
    this.holePunchOutcomes.inc({ outcome, transport: (TRANSPORTS as readonly string[]).includes(transport) ? transport : 'other' })
    // older peers report no strategy; their punches were plain DCUtR
    const strategy = report.strategy ?? 'dcutr'
    this.holePunchStrategies.inc({ strategy, outcome })
    if (report.sockets != null) this.holePunchSockets.inc({ strategy }, report.sockets)
    if (report.probes != null) this.holePunchProbes.inc({ strategy }, report.probes)
    if (report.durationMs != null) this.holePunchDuration.observe({ strategy, outcome }, report.durationMs / 1000)
  }

  /** removes these metrics from the registry, so a gateway can be created again in the same process */
  unregister (): void {
    for (const name of METRIC_NAMES) {
      this.registry.removeSingleMetric(name)
    }
  }
}
