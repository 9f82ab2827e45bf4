import { request } from 'node:http'
import { defaultControlSocket } from '../config/index.js'

/** where `natmesh peer` serves its control socket when run with its defaults in this directory */
export const DEFAULT_CONTROL_SOCKET = defaultControlSocket('./.natmesh/peer.key')

export class ControlError extends Error {
  override name = 'ControlError'

  /** the peer's NatmeshError code, when it answered with one */
  constructor (message: string, readonly code?: string) {
    super(message)
  }
}

/**
 * One JSON request to a running peer's control socket (`natmesh status`, `natmesh ping`).
 * @throws {ControlError} when no peer answers there, or the peer answered with an error
 */
export async function controlRequest<T> (socketPath: string, method: 'GET' | 'POST', path: string, body?: unknown, timeoutMs = 30_000): Promise<T> {
  return new Promise((resolve, reject) => {
    const payload = body == null ? undefined : JSON.stringify(body)
    const req = request({
      socketPath,
      method,
      path,
      timeout: timeoutMs,
      headers: payload == null ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }
    }, (res) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => chunks.push(chunk))
      res.on('end', () => {
        let parsed: unknown
        try {
          parsed = JSON.parse(Buffer.concat(chunks).toString('utf8'))
        } catch {
          reject(new ControlError(`${socketPath} answered with something that is not JSON (is it a natmesh peer's control socket?)`))
          return
        }
        if ((res.statusCode ?? 500) >= 400) {
          const { error, code } = parsed as { error?: string, code?: string }
          reject(new ControlError(error ?? `HTTP ${res.statusCode}`, code))
        } else resolve(parsed as T)
      })
    })
    req.on('timeout', () => { req.destroy(new Error(`no answer within ${timeoutMs} ms`)) })
    req.on('error', (err: NodeJS.ErrnoException) => {
      reject(new ControlError(err.code === 'ENOENT' || err.code === 'ECONNREFUSED'
        ? `no running natmesh peer at ${socketPath} (start one with \`natmesh peer\` in this directory, or name its socket with --control-socket)`
        : `control socket ${socketPath}: ${err.message}`))
    })
    req.end(payload)
  })
}
