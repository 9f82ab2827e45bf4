import { fastify } from 'fastify'
import type { Logger } from '../logging.js'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

export interface JsonApiInit {
  host: string
  /** 0 picks a free port; read the actual one from `url` */
  port: number
  logger: Logger
  /** the peer id /healthz reports */
  peerId: () => string
  /** adds the daemon's own routes */
  routes: (app: FastifyInstance) => void
}

export interface JsonApi {
  /** e.g. http://127.0.0.1:8080 */
  url: string
  close: () => Promise<void>
}

/**
 * A daemon's local HTTP API: `/healthz` plus the routes given. Every response, errors included, is JSON (or
 * what a route sends itself, like Prometheus text), never an HTML page.
 */
export async function startJsonApi (init: JsonApiInit): Promise<JsonApi> {
  const startedAt = Date.now()
  const app = fastify({
    // requests fastify rejects before routing (a malformed URL) get the same JSON error shape
    frameworkErrors: (err: FastifyError, _request: FastifyRequest, reply: FastifyReply) => { void reply.code(err.statusCode ?? 400).send({ error: err.message }) }
  })

  app.get('/healthz', async () => ({
    status: 'ok',
    peerId: init.peerId(),
    uptimeS: Math.floor((Date.now() - startedAt) / 1000)
  }))

  init.routes(app)

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
