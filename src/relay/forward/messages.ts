import { isIPv4 } from 'node:net'
import { lpStream } from '@libp2p/utils'
import type { AbortOptions, Stream } from '@libp2p/interface'
import type { UdpEndpoint } from '../../transport/index.js'

/** peer to gateway: "forward a circuit to `target`; my end is stream `streamId`" */
export const FORWARD_HOP_PROTOCOL = '/natmesh/relay-forward/hop/1.0.0'
/** gateway to the target peer: "`source` asks for a circuit; my end for you is stream `streamId`" */
export const FORWARD_STOP_PROTOCOL = '/natmesh/relay-forward/stop/1.0.0'
/**
 * The same exchanges where both sides know relay workers: an OK reply (hop) or a stop request may carry `port`,
 * the UDP port of the gateway's relay worker that the peer's stream sends to instead of the gateway's main port,
 * and a hop request may ask for `inLoop` forwarding (a peer that could not reach a worker port). Peers that know
 * only 1.0.0 negotiate that and keep in-loop forwarding.
 */
export const FORWARD_HOP_WORKERS_PROTOCOL = '/natmesh/relay-forward/hop/1.1.0'
export const FORWARD_STOP_WORKERS_PROTOCOL = '/natmesh/relay-forward/stop/1.1.0'
/** every version, newest first: what a node offers, and what counts as a forwarded circuit's control stream */
export const FORWARD_HOP_PROTOCOLS = [FORWARD_HOP_WORKERS_PROTOCOL, FORWARD_HOP_PROTOCOL]
export const FORWARD_STOP_PROTOCOLS = [FORWARD_STOP_WORKERS_PROTOCOL, FORWARD_STOP_PROTOCOL]

/** what a circuit may carry: bytes both directions together (decimal string, a bigint) and milliseconds */
export interface ForwardLimit { data?: string, durationMs?: number }

export type ForwardStatus = 'OK' | 'NO_RESERVATION' | 'PERMISSION_DENIED' | 'UNAVAILABLE' | 'MALFORMED'

/**
 * `noiseFirst` (optional, natmesh's UDP overlay "noise first", see transport/noise-first.ts): in a request, the
 * source offers to start the circuit with Noise instead of multistream-select; in a reply, the target agrees. The
 * gateway passes both on; one that does not (an older gateway) leaves the circuit to negotiate as usual.
 */
/**
 * `punch` (optional): in a hop request, the source hole punches and asks the gateway to pass on where each peer's
 * overlay socket is mapped, as the gateway sees it: the source's goes to the target in the stop request
 * (`sourceAt`); the target's comes back in the OK reply (`targetAt`) only if the target punches too and says so
 * (`punch` in its stop reply). Both can then dial each other while the circuit's own handshake is still under
 * way. A peer that does not punch (relay-only, ice mode) never asks, and its mapping is passed on to nobody.
 * "host:port", IPv4 (the overlay's family); older gateways and peers drop the fields.
 */
export interface HopRequest { target: string, streamId: number, inLoop?: boolean, noiseFirst?: true, punch?: true }
export interface StopRequest { source: string, streamId: number, limit?: ForwardLimit, port?: number, noiseFirst?: true, sourceAt?: string }
export interface Reply { status: ForwardStatus, streamId?: number, limit?: ForwardLimit, port?: number, noiseFirst?: true, punch?: true, targetAt?: string }

const MAX_MESSAGE_BYTES = 4096
const STATUSES = new Set<string>(['OK', 'NO_RESERVATION', 'PERMISSION_DENIED', 'UNAVAILABLE', 'MALFORMED'])

/** Length-prefixed JSON messages on a control stream; the stream itself stays open for the circuit's lifetime. */
export class ControlChannel {
  private readonly lp
  constructor (readonly stream: Stream) {
    this.lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_BYTES })
  }

  async write (message: HopRequest | StopRequest | Reply, options?: AbortOptions): Promise<void> {
    await this.lp.write(new TextEncoder().encode(JSON.stringify(message)), options)
  }

  async read (options?: AbortOptions): Promise<Record<string, unknown>> {
    const parsed: unknown = JSON.parse(new TextDecoder().decode((await this.lp.read(options)).subarray()))
    if (typeof parsed !== 'object' || parsed == null || Array.isArray(parsed)) throw new Error('control message is not an object')
    return parsed as Record<string, unknown>
  }
}

export function isStreamId (value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0 && value <= 0xffffffff
}

export function parsePort (value: unknown): number | undefined {
  if (value == null) return undefined
  if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0 || value > 65535) throw new Error('port is not a UDP port')
  return value
}

/** `sourceAt` / `targetAt` as written */
export function formatEndpoint (at: UdpEndpoint): string {
  return `${at.host}:${at.port}`
}

/** `sourceAt` / `targetAt` as read: undefined when absent or not an IPv4 "host:port" (a hint, never fatal) */
export function parseEndpoint (value: unknown): UdpEndpoint | undefined {
  if (typeof value !== 'string') return undefined
  const match = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(value)
  const port = Number(match?.[2])
  if (match?.[1] == null || !isIPv4(match[1]) || port < 1 || port > 65535) return undefined
  return { host: match[1], port, family: 4 }
}

export function parseLimit (value: unknown): ForwardLimit | undefined {
  if (value == null) return undefined
  if (typeof value !== 'object') throw new Error('limit is not an object')
  const { data, durationMs } = value as Record<string, unknown>
  if (data != null && (typeof data !== 'string' || !/^\d+$/.test(data))) throw new Error('limit.data is not a decimal byte count')
  if (durationMs != null && (typeof durationMs !== 'number' || !Number.isInteger(durationMs) || durationMs <= 0)) throw new Error('limit.durationMs is not a positive integer')
  return { ...(data != null ? { data } : {}), ...(durationMs != null ? { durationMs } : {}) }
}

export function parseReply (message: Record<string, unknown>): Reply {
  if (typeof message.status !== 'string' || !STATUSES.has(message.status)) throw new Error(`unknown status ${String(message.status)}`)
  const status = message.status as ForwardStatus
  if (status !== 'OK') return { status }
  if (!isStreamId(message.streamId)) throw new Error('OK reply without a stream id')
  const targetAt = parseEndpoint(message.targetAt)
  return {
    status,
    streamId: message.streamId,
    limit: parseLimit(message.limit),
    port: parsePort(message.port),
    ...(message.noiseFirst === true ? { noiseFirst: true } : {}),
    ...(message.punch === true ? { punch: true } : {}),
    ...(targetAt != null ? { targetAt: formatEndpoint(targetAt) } : {})
  }
}
