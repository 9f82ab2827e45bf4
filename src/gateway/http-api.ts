import { peerIdFromString } from '@libp2p/peer-id'
import { startJsonApi } from '../http/json-api.js'
import type { JsonApi } from '../http/json-api.js'
import type { Logger } from '../core/logging.js'
import type { ObservedAddressBook, ObservedPeer } from './address-book.js'
import { dashboardRoutes } from './dashboard/dashboard-route.js'
import type { DashboardSnapshot } from './dashboard/snapshot.js'
import { iceServersRoute } from '../ice-servers/route.js'
import type { IceServersRouteInit } from '../ice-servers/route.js'
import type { Registry } from 'prom-client'

export interface GatewayInfo {
  peerId: string
  /** the multiaddrs peers dial this gateway on */
  addresses: string[]
}

export interface HttpApiInit {
  host: string
  /** 0 picks a free port; read the actual one from `url` */
  port: number
  addressBook: ObservedAddressBook
  registry: Registry
  info: () => GatewayInfo
  logger: Logger
  /** serves GET /api/v1/ice/servers when given */
  iceServers?: IceServersRouteInit
  /** serves the dashboard page and its JSON when given */
  dashboard?: () => Promise<DashboardSnapshot>
}

export type HttpApi = JsonApi

/**
 * The gateway's HTTP side: health for orchestrators, Prometheus metrics, the observed-address book as JSON, the
 * ICE servers for WebRTC apps, and the dashboard.
 */
export async function startHttpApi (init: HttpApiInit): Promise<HttpApi> {
  return startJsonApi({
    host: init.host,
    port: init.port,
    logger: init.logger,
    peerId: () => init.info().peerId,
    routes: (app) => {
      app.get('/metrics', async (_request, reply) => {
        const text = await init.registry.metrics()
        return reply.type(init.registry.contentType).send(text)
      })

      app.get('/api/v1/info', async () => init.info())

      if (init.iceServers != null) void app.register(iceServersRoute(init.iceServers))
      if (init.dashboard != null) void app.register(dashboardRoutes(init.dashboard))

      app.get('/api/v1/peers', async (): Promise<ObservedPeer[]> => init.addressBook.list())

      app.get<{ Params: { peerId: string } }>('/api/v1/peers/:peerId', async (request, reply) => {
        let peerId: string
        try {
          // normalise, so any valid spelling of a peer id finds the entry
          peerId = peerIdFromString(request.params.peerId).toString()
        } catch {
          return reply.code(400).send({ error: 'malformed peer id' })
        }

        return init.addressBook.get(peerId) ?? reply.code(404).send({ error: 'unknown peer' })
      })
    }
  })
}
