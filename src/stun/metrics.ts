import { Counter } from 'prom-client'
import type { Registry } from 'prom-client'
import type { StunServerStats } from './server.js'

const COUNTERS: Array<{ name: string, help: string, stat: keyof StunServerStats }> = [
  { name: 'natmesh_stun_requests_total', help: 'STUN Binding requests answered', stat: 'requests' },
  { name: 'natmesh_stun_rate_limited_total', help: 'STUN requests dropped by the per-source-IP rate limit', stat: 'rateLimited' },
  { name: 'natmesh_stun_malformed_total', help: 'Datagrams on the STUN ports that were not a well-formed Binding request (ignored)', stat: 'malformed' }
]

/**
 * The STUN server's counters in Prometheus, read from its stats on every scrape (the server itself knows nothing
 * of prom-client). Returns a function that removes them again.
 */
export function registerStunMetrics (registry: Registry, stats: () => StunServerStats): () => void {
  for (const { name, help, stat } of COUNTERS) {
    let counted = 0
    new Counter({
      name,
      help,
      registers: [registry],
      collect () {
        const total = stats()[stat]
        if (total > counted) this.inc(total - counted)
        counted = Math.max(counted, total)
      }
    })
  }
  return () => {
    for (const { name } of COUNTERS) registry.removeSingleMetric(name)
  }
}
