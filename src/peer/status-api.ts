import { startJsonApi } from '../http/json-api.js'
import type { JsonApi } from '../http/json-api.js'
import type { Logger } from '../logging.js'
import { createDaemonRegistry } from '../metrics/registry.js'
import type { NatmeshPeer } from './peer.js'
import { registerPeerMetrics } from './peer-metrics.js'

/**
 * A peer's local status API (`natmesh peer --api host:port`): which gateways it holds, its public addresses, and
 * per remote peer and per session the path, RTT, bytes and migrations; the same as Prometheus metrics.
 */
export async function startStatusApi (peer: NatmeshPeer, init: { host: string, port: number, logger: Logger }): Promise<JsonApi> {
  const registry = createDaemonRegistry()
  registerPeerMetrics(registry, peer)
  return startJsonApi({
    ...init,
    peerId: () => peer.peerId.toString(),
    routes: (app) => {
      app.get('/api/v1/status', async () => ({
        peerId: peer.peerId.toString(),
        mode: peer.config.mode,
        gateways: peer.gateways(),
        relayAddresses: peer.relayAddresses().map(String),
        publicAddresses: peer.publicAddresses().map(String),
        ...(peer.config.mode === 'ice' ? { ice: peer.iceStatus() } : {}),
        nat: peer.natReport() ?? null,
        // what the hole puncher goes by: decides plain DCUtR, birthday punch or none
        natMapping: await peer.natMapping()
      }))
      app.get('/api/v1/connections', async () => peer.stats())
      app.get('/api/v1/sessions', async () => peer.sessionStats().map(stats => ({ ...stats })))
      app.get('/metrics', async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()))
    }
  })
}
