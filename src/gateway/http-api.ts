import { peerIdFromString } from '@libp2p/peer-id'
import { fastify } from 'fastify'
import type { ObservedAddressBook, ObservedPeer } from './address-book.js'
import type { Logger } from '../logging.js'
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
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
}

export interface HttpApi {
  /** e.g. http://127.0.0.1:8080 */
  url: string
  close: () => Promise<void>
}

/**
 * The gateway's HTTP side: health for orchestrators, Prometheus metrics, and the observed-address book as JSON.
 * Every response, errors included, is JSON (or Prometheus text), never an HTML page.
 */
export async function startHttpApi (init: HttpApiInit): Promise<HttpApi> {
  const startedAt = Date.now()
  const app = fastify({
    // requests fastify rejects before routing (a malformed URL) get the same JSON error shape
    frameworkErrors: (err: FastifyError, _request: FastifyRequest, reply: FastifyReply) => { void reply.code(err.statusCode ?? 400).send({ error: err.message }) }
  })

  app.get('/healthz', async () => ({
    status: 'ok',
    peerId: init.info().peerId,
    uptimeS: Math.floor((Date.now() - startedAt) / 1000)
  }))

  app.get('/metrics', async (_request, reply) => {
    const text = await init.registry.metrics()
    return reply.type(init.registry.contentType).send(text)
  })

  app.get('/api/v1/info', async () => init.info())

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

  app.setNotFoundHandler(async (_request, reply) => reply.code(404).send({ error: 'not found' }))

  app.setErrorHandler(async (err: FastifyError, request, reply) => {
    const status = err.statusCode ?? 500

    if (status >= 500) {
      init.logger.error({ err, url: request.url }, 'HTTP API request failed')
      return reply.code(status).send({ error: 'internal error' })
    }

    return reply.code(status).send({ error: err.message })
  })

  try {
    await app.listen({ host: init.host, port: init.port })
  } catch (err: any) {
    await app.close()
    throw new Error(`HTTP API cannot listen on ${formatHostPort(init.host, init.port)}: ${describeListenError(err)}`, { cause: err })
  }

  const address = app.server.address()
  const port = typeof address === 'object' && address != null ? address.port : init.port
  const url = `http://${formatHostPort(init.host, port)}`
  init.logger.info({ url }, 'HTTP API listening')

  return {
    url,
    close: async () => { await app.close() }
  }
}

function describeListenError (err: { code?: string, message: string }): string {
  switch (err.code) {
    case 'EADDRINUSE': return 'the port is already in use (choose another with --api host:port)'
    case 'EADDRNOTAVAIL': return 'no network interface has this address'
    case 'EACCES': return 'permission denied (ports below 1024 need privileges)'
    default: return err.message
  }
}

function formatHostPort (host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}
