import { RELAY_V2_HOP_CODEC, RELAY_V2_STOP_CODEC } from '@libp2p/circuit-relay-v2'
import type { Registry } from 'prom-client'
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
    .filter(value => value.labels.protocol === `${RELAY_V2_HOP_CODEC} received` || value.labels.protocol === `${RELAY_V2_STOP_CODEC} received`)
    .reduce((sum, value) => sum + value.value, 0)
}
