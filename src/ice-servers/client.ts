import { lpStream } from '@libp2p/utils'
import type { AbortOptions, Libp2p, PeerId } from '@libp2p/interface'
import { ICE_SERVERS_PROTOCOL, iceServersResponseSchema, MAX_ICE_SERVERS_MESSAGE_BYTES } from './types.js'
import type { IceServersResponse } from './types.js'
import { NatmeshError } from '../core/errors.js'

/**
 * Asks a gateway for its ICE servers over /natmesh/ice-servers/1.0.0 (on an existing connection when there is
 * one). The TURN credential in the answer is in this node's own peer id, valid for `ttl` seconds.
 * @throws {NatmeshError} INVALID_ICE_SERVERS_RESPONSE when the answer is not valid JSON in the expected shape
 */
export async function fetchIceServers (libp2p: Pick<Libp2p, 'dialProtocol'>, gateway: PeerId, options: AbortOptions = {}): Promise<IceServersResponse> {
  const signal = options.signal ?? AbortSignal.timeout(10_000)
  const stream = await libp2p.dialProtocol(gateway, ICE_SERVERS_PROTOCOL, { signal })

  try {
    const bytes = await lpStream(stream, { maxDataLength: MAX_ICE_SERVERS_MESSAGE_BYTES }).read({ signal })
    await stream.close({ signal })
    return parseIceServersResponse(bytes.subarray())
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}

function parseIceServersResponse (bytes: Uint8Array): IceServersResponse {
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch (err: any) {
    throw new NatmeshError('INVALID_ICE_SERVERS_RESPONSE', `ICE servers response is not JSON: ${err.message}`, { cause: err })
  }

  const parsed = iceServersResponseSchema.safeParse(json)
  if (!parsed.success) {
    const issues = parsed.error.issues.map(issue => `${issue.path.join('.') || '(response)'}: ${issue.message}`).join('; ')
    throw new NatmeshError('INVALID_ICE_SERVERS_RESPONSE', `invalid ICE servers response: ${issues}`)
  }
  return parsed.data
}
