import { createHash, timingSafeEqual } from 'node:crypto'
import cors from '@fastify/cors'
import rateLimit from '@fastify/rate-limit'
import { peerIdFromString } from '@libp2p/peer-id'
import type { FastifyInstance } from 'fastify'
import type { IceServersResponse } from './types.js'

export const ICE_SERVERS_PATH = '/api/v1/ice/servers'

/** whom the TURN credential names when the caller does not give a peer id */
const DEFAULT_HTTP_IDENTITY = 'http-api'

export interface IceServersRouteInit {
  /** the bearer token callers must present */
  token: string
  /** per client IP */
  rateLimit: { max: number, windowMs: number }
  /** web origins allowed to call the route from their pages (CORS); empty: same-origin only */
  corsOrigins: readonly string[]
  serversFor: (identity: string) => IceServersResponse
}

/**
 * GET /api/v1/ice/servers for WebRTC apps: `Authorization: Bearer <token>`, rate limited per client IP (failed
 * attempts count too, so the token cannot be guessed quickly). `?peerId=` names the credential's identity.
 * With `corsOrigins`, pages of those origins may call it from the browser (preflight and CORS headers).
 */
export function iceServersRoute (init: IceServersRouteInit): (app: FastifyInstance) => Promise<void> {
  const expected = digest(init.token)

  return async (app) => {
    if (init.corsOrigins.length > 0) {
      // @fastify/cors answers preflights in its onRequest hook, before the rate limit and the token check below (a
      // preflight carries no Authorization header), and adds its headers to every answer of this route, 401 and 429
      // included. Its catch-all OPTIONS route sits in this scope, outside the token check: it answers preflights
      // for this path only, 404 for all others.
      await app.register(cors, {
        delegator: (request, callback) => {
          const ours = request.url.split('?')[0] === ICE_SERVERS_PATH
          callback(null, ours ? { origin: [...init.corsOrigins], methods: ['GET'], allowedHeaders: ['Authorization'], maxAge: 600 } : { origin: false })
        }
      })
    }
    // a scope of its own, so the limit and the token check apply to this route only
    await app.register(async (route) => {
      await route.register(rateLimit, { max: init.rateLimit.max, timeWindow: init.rateLimit.windowMs })

      // preHandler, not onRequest: the limiter hooks onRequest per route, which runs after app-wide onRequest hooks,
      // and refused tokens must count against the limit too
      route.addHook('preHandler', async (request, reply) => {
        const presented = /^Bearer (\S+)$/i.exec(request.headers.authorization ?? '')?.[1]
        // compare digests: equal length whatever was sent, and timingSafeEqual leaks nothing about where they differ
        if (presented == null || !timingSafeEqual(digest(presented), expected)) {
          return reply.code(401).header('www-authenticate', 'Bearer realm="natmesh"')
            .send({ error: presented == null ? 'missing bearer token' : 'wrong bearer token' })
        }
      })

      route.get<{ Querystring: { peerId?: string } }>(ICE_SERVERS_PATH, async (request, reply) => {
        const { peerId } = request.query
        let identity = DEFAULT_HTTP_IDENTITY
        if (peerId != null) {
          try {
            identity = peerIdFromString(peerId).toString()
          } catch {
            return reply.code(400).send({ error: 'malformed peer id' })
          }
        }
        return reply.header('cache-control', 'no-store').send(init.serversFor(identity))
      })
    })
  }
}

function digest (token: string): Buffer {
  return createHash('sha256').update(token).digest()
}
