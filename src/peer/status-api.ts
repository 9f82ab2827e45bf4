import { peerIdFromString } from '@libp2p/peer-id'
import { NatmeshError } from '../core/errors.js'
import { startJsonApi } from '../http/json-api.js'
import type { JsonApi, JsonApiListen } from '../http/json-api.js'
import type { Logger } from '../core/logging.js'
import { createDaemonRegistry } from '../metrics/registry.js'
import type { NatmeshPeer } from './peer.js'
import { registerPeerMetrics } from './peer-metrics.js'
import type { Registry } from 'prom-client'

export type StatusApiInit = JsonApiListen & {
  logger: Logger
  /**
   * the control endpoint (a unix socket only its owner can open) also takes commands: POST /api/v1/ping makes
   * the peer dial and ping; the TCP status API (`--api`) only reports
   */
  control?: boolean
}

/**
 * One metrics registry per peer, shared by its status API and its control socket, and made at the first scrape:
 * every CLI peer serves a control socket, and most are never scraped (prom-client's default metrics keep an
 * event-loop monitor and a GC observer running).
 */
const registries = new WeakMap<NatmeshPeer, Registry>()

function registryOf (peer: NatmeshPeer): Registry {
  let registry = registries.get(peer)
  if (registry == null) {
    registry = createDaemonRegistry()
    registerPeerMetrics(registry, peer)
    registries.set(peer, registry)
  }
  return registry
}

/**
 * A peer's local status API (`natmesh peer --api host:port`, and the control socket `natmesh status` reads):
 * which gateways it holds, its public addresses, and per remote peer and per session the path, RTT, bytes and
 * migrations; the same as Prometheus metrics.
 */
export async function startStatusApi (peer: NatmeshPeer, init: StatusApiInit): Promise<JsonApi> {
  const { control, ...listen } = init
  return startJsonApi({
    ...listen,
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
      app.get('/metrics', async (_request, reply) => {
        const registry = registryOf(peer)
        return reply.type(registry.contentType).send(await registry.metrics())
      })
      if (control === true) {
        app.post<{ Body: { target?: unknown } }>('/api/v1/ping', async (request, reply) => {
          const target = request.body?.target
          if (typeof target !== 'string' || target === '') return reply.code(400).send({ error: 'body must be {"target": "<peer id | station:name | multiaddr>"}' })
          return pingTarget(peer, target).catch((err: Error) => reply.code(502).send({ error: err.message, ...(err instanceof NatmeshError ? { code: err.code } : {}) }))
        })
      }
    }
  })
}

/** One ping over the best path to `target`, connecting first when there is no connection yet. */
async function pingTarget (peer: NatmeshPeer, target: string): Promise<{ peer: string, path: string, rttMs: number }> {
  const known = isPeerId(target) ? peer.bestConnection(peerIdFromString(target)) : undefined
  const connection = known ?? await peer.connect(target)
  const remote = connection.remotePeer
  return { peer: remote.toString(), ...await peer.ping(remote) }
}

function isPeerId (target: string): boolean {
  try {
    peerIdFromString(target)
    return true
  } catch {
    return false
  }
}
