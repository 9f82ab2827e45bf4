import { peerIdFromMultihash } from '@libp2p/peer-id'
import { CODE_P2P_CIRCUIT, multiaddr } from '@multiformats/multiaddr'
import * as Digest from 'multiformats/hashes/digest'
import type { CircuitRelayService, Limit } from '@libp2p/circuit-relay-v2'
import type { AbortOptions, Connection, ConnectionGater, Logger, PeerId, Stream } from '@libp2p/interface'
import { reservationStoreOf } from './reservation-store.js'
import { splice } from './splice.js'
import type { RelayBuffers } from './splice.js'

interface HopRequest { peer?: { id: Uint8Array, addrs: Uint8Array[] } }
interface PbStream { pb: (codec: unknown) => { write: (message: unknown, options?: AbortOptions) => Promise<void> }, unwrap: () => Stream }

/** What natmesh touches of @libp2p/circuit-relay-v2's server beyond its public interface. */
interface RelayServerInternals {
  handleConnect: (args: { stream: PbStream, request: HopRequest, connection: Connection }, options: AbortOptions) => Promise<void>
  stopHop: (args: { connection: Connection, request: { type: string, peer: { id: Uint8Array, addrs: Uint8Array[] }, limit?: Limit } }, options: AbortOptions) => Promise<Stream | undefined>
  components: { connectionGater: ConnectionGater, connectionManager: { getConnections: (peer: PeerId) => Connection[] } }
  shutdownController: AbortController
  log: Logger
}

type StatusName = 'OK' | 'NO_RESERVATION' | 'PERMISSION_DENIED' | 'CONNECTION_FAILED' | 'MALFORMED_MESSAGE'

/** The relay's protobuf codecs; the package exports no path to them, so they are found beside its entry point. */
const relayPb = await import(new URL('./pb/index.js', import.meta.resolve('@libp2p/circuit-relay-v2')).href) as {
  HopMessage: { Type: { STATUS: string } }
  StopMessage: { Type: { CONNECT: string } }
  Status: Record<StatusName, string>
}
const Status = relayPb.Status

class TransferLimitError extends Error {
  override name = 'TransferLimitError'
}

class DurationLimitError extends Error {
  override name = 'DurationLimitError'
}

/**
 * Replaces the relay server's CONNECT handling with the same checks and replies, but with `splice` joining the
 * hop and stop streams: bounded buffering with backpressure instead of the stock pipe (which queues without bound).
 */
export function spliceCircuitsWithBackpressure (relay: CircuitRelayService, buffers: RelayBuffers): void {
  const server = relay as unknown as RelayServerInternals
  if (typeof server.handleConnect !== 'function' || typeof server.stopHop !== 'function' || server.components == null) {
    throw new Error('this @libp2p/circuit-relay-v2 version has no CONNECT handler natmesh can replace')
  }
  const store = reservationStoreOf(relay)
  server.handleConnect = async ({ stream, request, connection }, options) => {
    const hop = stream.pb(relayPb.HopMessage)
    const answer = async (status: string, limit?: Limit): Promise<void> => { await hop.write({ type: relayPb.HopMessage.Type.STATUS, status, limit }, options) }
    if (connection.remoteAddr.getComponents().some(c => c.code === CODE_P2P_CIRCUIT)) {
      await answer(Status.PERMISSION_DENIED)
      return
    }
    let target: PeerId
    try {
      if (request.peer == null) throw new Error('no peer in the CONNECT request')
      request.peer.addrs.forEach(addr => multiaddr(addr))
      target = peerIdFromMultihash(Digest.decode(request.peer.id))
    } catch (err) {
      server.log.error('malformed CONNECT from %p - %e', connection.remotePeer, err)
      await answer(Status.MALFORMED_MESSAGE)
      return
    }
    const reservation = store.get(target) as ({ limit?: Limit, signal: AbortSignal } | undefined)
    if (reservation == null) {
      await answer(Status.NO_RESERVATION)
      return
    }
    if ((await server.components.connectionGater.denyOutboundRelayedConnection?.(connection.remotePeer, target)) === true) {
      await answer(Status.PERMISSION_DENIED)
      return
    }
    const targetConnection = server.components.connectionManager.getConnections(target)[0]
    if (targetConnection == null) {
      await answer(Status.NO_RESERVATION)
      return
    }
    // the hop request's deadline must not reach the stop stream: a signal given to newStream stays with the
    // stream, and the stock relay's 30 s hop timeout then resets every circuit 30 s after it opened
    const negotiation = new AbortController()
    const giveUp = (): void => { negotiation.abort(options.signal?.reason) }
    options.signal?.addEventListener('abort', giveUp, { once: true })
    let stop: Stream | undefined
    try {
      stop = await server.stopHop({
        connection: targetConnection,
        request: { type: relayPb.StopMessage.Type.CONNECT, peer: { id: connection.remotePeer.toMultihash().bytes, addrs: [] }, limit: reservation.limit }
      }, { signal: negotiation.signal })
    } finally {
      options.signal?.removeEventListener('abort', giveUp)
    }
    if (stop == null) {
      await answer(Status.CONNECTION_FAILED)
      return
    }
    await answer(Status.OK, reservation.limit)
    server.log('circuit from %p to %p open', connection.remotePeer, target)
    const ends = circuitEnds(server.shutdownController.signal, reservation.signal, reservation.limit?.duration)
    splice(stream.unwrap(), stop, {
      signal: ends.signal,
      onEnd: ends.clear,
      dataLimit: reservation.limit?.data,
      dataLimitError: () => new TransferLimitError(`data limit of ${reservation.limit?.data} bytes exceeded`),
      buffers
    })
  }
}

/**
 * Aborts on gateway shutdown (with its reason), or as a duration limit when the reservation or the circuit's
 * duration (ms, as the stock relay reads it) ends. `clear` forgets the circuit once it is over.
 */
function circuitEnds (shutdown: AbortSignal, reservation: AbortSignal, durationMs?: number): { signal: AbortSignal, clear: () => void } {
  const controller = new AbortController()
  const onShutdown = (): void => { controller.abort(shutdown.reason) }
  const onEnd = (): void => { controller.abort(new DurationLimitError(`duration limit of ${durationMs ?? '∞'} ms exceeded`)) }
  const timer = durationMs != null ? setTimeout(onEnd, durationMs) : undefined
  timer?.unref()
  const clear = (): void => {
    clearTimeout(timer)
    shutdown.removeEventListener('abort', onShutdown)
    reservation.removeEventListener('abort', onEnd)
  }
  if (shutdown.aborted) onShutdown()
  shutdown.addEventListener('abort', onShutdown, { once: true })
  reservation.addEventListener('abort', onEnd, { once: true })
  controller.signal.addEventListener('abort', clear, { once: true })
  return { signal: controller.signal, clear }
}
