import { createRequire } from 'node:module'
import { version as libp2pVersion } from 'libp2p/version'
import { collectDefaultMetrics, Gauge, Registry } from 'prom-client'

/** natmesh's version, from its package.json (two levels up from src/metrics and from dist/metrics alike) */
export const NATMESH_VERSION: string = (createRequire(import.meta.url)('../../package.json') as { version: string }).version

/**
 * A daemon's own Prometheus registry with prom-client's `process_*` and `nodejs_*` defaults and
 * `natmesh_build_info`. Each daemon gets its own rather than prom-client's global one, so two daemons in one
 * process (tests, an app embedding natmesh) never share or clear each other's metrics.
 */
export function createDaemonRegistry (): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  const buildInfo = new Gauge({
    name: 'natmesh_build_info',
    help: 'Always 1; the labels say which natmesh and libp2p versions this daemon runs',
    labelNames: ['version', 'libp2p_version'] as const,
    registers: [registry]
  })
  buildInfo.set({ version: NATMESH_VERSION, libp2p_version: libp2pVersion }, 1)
  return registry
}
