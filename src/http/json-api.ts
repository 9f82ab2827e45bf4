import { chmod, lstat, unlink } from 'node:fs/promises'
import { connect } from 'node:net'
import { fastify } from 'fastify'
import type { Logger } from '../core/logging.js'
import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'

/** a TCP address, or a unix socket path */
export type JsonApiListen = {
  host: string
  /** 0 picks a free port; read the actual one from `url` */
  port: number
} | {
  /** a unix socket, made readable and writable by its owner only */
  path: string
}

export type JsonApiInit = JsonApiListen & {
  logger: Logger
  /** the peer id /healthz reports */
  peerId: () => string
  /** adds the daemon's own routes */
  routes: (app: FastifyInstance) => void
}

export interface JsonApi {
  /** e.g. http://127.0.0.1:8080, or unix:/path/peer.sock */
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
    if ('path' in init) {
      // longer names do not fit a sockaddr_un: the kernel would bind a truncated one
      if (Buffer.byteLength(init.path) > MAX_SOCKET_PATH_BYTES) throw Object.assign(new Error('path too long'), { code: 'ENAMETOOLONG' })
      await removeStaleSocket(init.path)
      await app.listen({ path: init.path })
      await chmod(init.path, 0o600)
    } else {
      await app.listen({ host: init.host, port: init.port })
    }
  } catch (err: any) {
    await app.close()
    const where = 'path' in init ? init.path : formatHostPort(init.host, init.port)
    throw new Error(`HTTP API cannot listen on ${where}: ${describeListenError(err, 'path' in init)}`, { cause: err })
  }

  let url: string
  if ('path' in init) {
    url = `unix:${init.path}`
  } else {
    const address = app.server.address()
    const port = typeof address === 'object' && address != null ? address.port : init.port
    url = `http://${formatHostPort(init.host, port)}`
  }
  init.logger.info({ url }, 'HTTP API listening')

  return {
    url,
    close: async () => { await app.close() }
  }
}

/** sun_path is 108 bytes on Linux, the terminating NUL included */
const MAX_SOCKET_PATH_BYTES = 107

/**
 * A socket file left by a daemon that was killed is removed; one a live daemon still answers on is not taken
 * over, and neither is a file that is no socket.
 */
async function removeStaleSocket (path: string): Promise<void> {
  const stats = await lstat(path).catch((err: NodeJS.ErrnoException) => { if (err.code === 'ENOENT') return undefined; throw err })
  if (stats == null) return
  if (!stats.isSocket()) throw Object.assign(new Error(`${path} exists and is not a socket`), { code: 'ENOTSOCK' })
  const live = await new Promise<boolean>((resolve) => {
    const probe = connect(path)
    probe.once('connect', () => { probe.destroy(); resolve(true) })
    probe.once('error', () => { resolve(false) })
  })
  if (live) throw Object.assign(new Error('in use'), { code: 'EADDRINUSE' })
  await unlink(path)
}

function describeListenError (err: { code?: string, message: string }, unixSocket: boolean): string {
  switch (err.code) {
    case 'EADDRINUSE': return unixSocket
      ? 'a running daemon is serving this socket (give each daemon its own --control-socket)'
      : 'the port is already in use (choose another with --api host:port)'
    case 'ENAMETOOLONG': return `a unix socket path has at most ${MAX_SOCKET_PATH_BYTES} bytes (choose a shorter --control-socket, or --no-control-socket)`
    case 'EADDRNOTAVAIL': return 'no network interface has this address'
    case 'EACCES': return 'permission denied (ports below 1024 need privileges)'
    default: return err.message
  }
}

function formatHostPort (host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`
}
