import type { Registry } from 'prom-client'

export const HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'
export const STOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/stop'
const TRANSFER_METRIC = 'libp2p_data_transfer_bytes_total'

/**
 * Bytes relayed so far, both directions. The relay server pipes a hop stream (from the dialer) into a stop
 * stream (to the target) and offers no byte count of its own; @libp2p/prometheus-metrics counts bytes per
 * protocol stream, so what arrived on hop and stop streams is what was relayed.
 */
export async function relayedBytes (registry: Registry): Promise<number> {
  const metric = registry.getSingleMetric(TRANSFER_METRIC)
  if (metric == null) return 0
  const { values } = await metric.get()
  return values
    .filter(value => value.labels.protocol === `${HOP_PROTOCOL} received` || value.labels.protocol === `${STOP_PROTOCOL} received`)
    .reduce((sum, value) => sum + value.value, 0)
}
