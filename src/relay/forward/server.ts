import { peerIdFromString } from '@libp2p/peer-id'
import { serviceCapabilities } from '@libp2p/interface'
import type { ComponentLogger, Connection, ConnectionGater, PeerId, Stream } from '@libp2p/interface'
import type { ConnectionManager, Registrar, TransportManager } from '@libp2p/interface-internal'
import type { Limit } from '@libp2p/circuit-relay-v2'
import { ProtocolHandler } from '../../core/protocol-handler.js'
import { isUdxMultiaddr, isUdxTransport, toUdpEndpoint } from '../../transport/index.js'
import type { UdpEndpoint, UdxTransport } from '../../transport/index.js'
import { ControlChannel, formatEndpoint, FORWARD_HOP_PROTOCOLS, FORWARD_HOP_WORKERS_PROTOCOL, FORWARD_STOP_PROTOCOL, FORWARD_STOP_PROTOCOLS, FORWARD_STOP_WORKERS_PROTOCOL, isStreamId, parseReply } from './messages.js'
import type { ForwardLimit, ForwardStatus } from './messages.js'
import { RelayWorkers } from './relay-workers.js'

/** how often a circuit's byte count is compared with its data limit; the cut lags by at most this */
const DATA_LIMIT_CHECK_MS = 50
/**
 * circuits with a smaller data limit stay with circuit relay v2, which cuts at the exact message: a forwarded
 * circuit is cut up to DATA_LIMIT_CHECK_MS of traffic late, which is noise against 16 MiB, not against 4 KiB
 */
const MIN_FORWARDED_DATA_LIMIT = 16 * 1024 * 1024
const NEGOTIATION_TIMEOUT_MS = 10_000

export interface ForwardServerInit {
  /** off: every request is answered UNAVAILABLE, so peers use circuit relay v2 */
  enabled: boolean
  /** the target's reservation, if it holds one (limits as the circuit relay server stores them) */
  reservation: (peer: PeerId) => { limit?: Limit } | undefined
  /** circuits from these peers get no limit (the relay server's allowlist, source side) */
  allowlist: string[]
  /** forward requests open at once on one connection (the connection gater limits circuits per peer) */
  maxInboundHopStreams: number
  /**
   * relay worker threads, each forwarding on its own core with its own UDP port (0: every circuit is forwarded
   * on the main event loop); `host` is the IP they bind, worker i binds `basePort + i` (0: ephemeral ports)
   */
  workers: { count: number, host: string, basePort: number }
  /** what an operator must hear of: told synchronously, never throws back */
  onEvent?: (event: ForwardServerEvent) => void
}

/**
 * `worker-unreached`: a peer's packets never reached a relay worker's port (a firewall that opens only the main
 * ports, most likely); the source dials again with in-loop forwarding. `worker-failed`: a relay worker thread
 * died; its circuits ended and new ones go to the other workers, or in-loop.
 */
export type ForwardServerEvent =
  | { type: 'worker-unreached', source: string, target: string, port: number, detail: string }
  | { type: 'worker-failed', port: number, error: string }

export interface ForwardServerComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
  connectionGater: ConnectionGater
  transportManager: TransportManager
  logger: ComponentLogger
}

/**
 * Forwarded circuits: for two natmesh peers that both reach the gateway over the UDP overlay, the gateway joins a
 * udx stream from each inside udx (stream.relayTo) and never decrypts or demultiplexes what they send; the peers
 * run noise and their muxer end to end over it. The same checks as a circuit relay CONNECT come first
 * (reservation, connection gater, allowlist), and the circuit gets the target's reservation limits: its duration
 * and its data (both directions together, what udx carried past its headers, checked every DATA_LIMIT_CHECK_MS).
 * Anything else (TCP, stock libp2p clients) keeps to circuit relay v2: a peer refused here falls back to it.
 *
 * With relay workers (relay-workers.ts), a circuit whose two peers both speak the 1.1.0 protocols is joined in a
 * worker thread instead, on the worker's own UDP port: the replies name that port, and the worker learns each
 * peer's address there from the peer's first packet. A circuit with an older peer, or from a peer that asks for
 * `inLoop` (it could not reach a worker port), is forwarded on the main loop as before.
 *
 * Peers that hole punch ask for each other's overlay mappings with the circuit (`punch`, see messages.ts): the
 * source's goes to the target in the stop request, the target's back to the source only if the target punches too.
 */
export class ForwardServer extends ProtocolHandler {
  readonly [Symbol.toStringTag] = '@natmesh/relay-forward-server'
  readonly [serviceCapabilities] = ['@natmesh/relay-forward']
  private readonly components: ForwardServerComponents
  private readonly init: ForwardServerInit
  private readonly circuits = new Set<ForwardedCircuit>()
  /** one timer for every circuit's data limit, running while a circuit has one */
  private dataSweep?: NodeJS.Timeout
  private closedBytes = 0
  private readonly opened: Record<ForwardPathKind, number> = { 'in-loop': 0, worker: 0 }
  private workers?: RelayWorkers

  constructor (components: ForwardServerComponents, init: ForwardServerInit) {
    super(components, FORWARD_HOP_PROTOCOLS, 'natmesh:relay-forward:server', { maxInboundStreams: init.maxInboundHopStreams, runOnLimitedConnection: false })
    this.components = components
    this.init = init
  }

  override async start (): Promise<void> {
    if (this.init.enabled && this.init.workers.count > 0) {
      this.workers = await RelayWorkers.start({
        ...this.init.workers,
        dataLimitCheckMs: DATA_LIMIT_CHECK_MS,
        log: this.log,
        onFailed: (port, err) => { this.init.onEvent?.({ type: 'worker-failed', port, error: err.message }) }
      })
    }
    await super.start()
  }

  /** the relay workers' UDP ports (empty without workers) */
  get workerPorts (): number[] {
    return this.workers?.ports ?? []
  }

  protected async serve (stream: Stream, connection: Connection): Promise<void> {
    try {
      await this.onHop(stream, connection)
    } catch (err: any) {
      this.log.error('forwarded circuit from %p failed - %e', connection.remotePeer, err)
      stream.abort(err)
    }
  }

  override async stop (): Promise<void> {
    await super.stop()
    for (const circuit of [...this.circuits]) circuit.end(new Error('the gateway is stopping'))
    clearInterval(this.dataSweep)
    this.dataSweep = undefined
    // what they forwarded stays counted once they are gone
    this.closedBytes += this.workers?.forwardedBytes ?? 0
    await this.workers?.stop()
    this.workers = undefined
  }

  /** payload bytes forwarded so far, both directions, circuits open and closed */
  get forwardedBytes (): number {
    let sum = this.closedBytes + (this.workers?.forwardedBytes ?? 0)
    for (const circuit of this.circuits) sum += circuit.bytes()
    return sum
  }

  /** forwarded circuits opened so far, by where they were forwarded */
  get circuitsOpened (): Record<ForwardPathKind, number> {
    return { ...this.opened }
  }

  private async onHop (stream: Stream, connection: Connection): Promise<void> {
    const signal = AbortSignal.timeout(NEGOTIATION_TIMEOUT_MS)
    const hop = new ControlChannel(stream)
    const answer = async (status: ForwardStatus): Promise<void> => {
      await hop.write({ status }, { signal })
      await stream.close({ signal })
    }
    const request = await hop.read({ signal })
    let target: PeerId
    try {
      if (typeof request.target !== 'string' || !isStreamId(request.streamId)) throw new Error('no target or stream id')
      target = peerIdFromString(request.target)
    } catch (err) {
      this.log('malformed forward request from %p - %e', connection.remotePeer, err)
      await answer('MALFORMED')
      return
    }
    const udx = this.components.transportManager.getTransports().find(isUdxTransport)
    const sourceAt = toUdpEndpoint(connection.remoteAddr)
    if (!this.init.enabled || udx == null || sourceAt == null) {
      await answer('UNAVAILABLE')
      return
    }
    const reservation = this.init.reservation(target)
    if (reservation == null) {
      await answer('NO_RESERVATION')
      return
    }
    if ((await this.components.connectionGater.denyOutboundRelayedConnection?.(connection.remotePeer, target)) === true) {
      await answer('PERMISSION_DENIED')
      return
    }
    const targetConnection = this.components.connectionManager.getConnections(target)
      .find(conn => conn.status === 'open' && conn.limits == null && isUdxMultiaddr(conn.remoteAddr))
    const targetAt = targetConnection == null ? undefined : toUdpEndpoint(targetConnection.remoteAddr)
    if (targetConnection == null || targetAt == null) {
      await answer('UNAVAILABLE')
      return
    }
    const limit = this.init.allowlist.includes(connection.remotePeer.toString()) ? undefined : toForwardLimit(reservation.limit)
    if (limit?.data != null && BigInt(limit.data) < MIN_FORWARDED_DATA_LIMIT) {
      await answer('UNAVAILABLE')
      return
    }
    const workersAsked = stream.protocol === FORWARD_HOP_WORKERS_PROTOCOL && request.inLoop !== true
    await this.join(udx, { hop, at: sourceAt, streamId: request.streamId, peer: connection.remotePeer, workersAsked, noiseFirst: request.noiseFirst === true, punch: request.punch === true }, { connection: targetConnection, at: targetAt, peer: target }, limit, signal)
  }

  /** `source.punch`: the source asked for the peers' mappings (see messages.ts); the target's goes back only if it punches too */
  private async join (udx: UdxTransport, source: { hop: ControlChannel, at: UdpEndpoint, streamId: number, peer: PeerId, workersAsked: boolean, noiseFirst: boolean, punch: boolean }, target: { connection: Connection, at: UdpEndpoint, peer: PeerId }, limit: ForwardLimit | undefined, signal: AbortSignal): Promise<void> {
    let stopStream: Stream | undefined
    let path: ForwardPath | undefined
    try {
      const workers = source.workersAsked ? this.workers : undefined
      stopStream = await target.connection.newStream(workers != null ? FORWARD_STOP_PROTOCOLS : FORWARD_STOP_PROTOCOL, { signal })
      if (workers != null && stopStream.protocol === FORWARD_STOP_WORKERS_PROTOCOL) {
        path = await this.workerPath(workers, { hosts: [source.at.host, target.at.host], sourceStreamId: source.streamId, dataLimit: limit?.data == null ? undefined : Number(limit.data) }, source.peer, target.peer)
      }
      path ??= inLoopPath(udx, { at: source.at, streamId: source.streamId }, target.at)
      const stop = new ControlChannel(stopStream)
      await stop.write({ source: source.peer.toString(), streamId: path.ids[1], limit, ...(path.port != null ? { port: path.port } : {}), ...(source.noiseFirst ? { noiseFirst: true } : {}), ...(source.punch ? { sourceAt: formatEndpoint(source.at) } : {}) }, { signal })
      const reply = parseReply(await stop.read({ signal }))
      if (reply.status !== 'OK' || reply.streamId == null) {
        path.destroy()
        stopStream.abort(new Error(`the target refused: ${reply.status}`))
        await source.hop.write({ status: reply.status }, { signal })
        await source.hop.stream.close({ signal })
        return
      }
      await path.join(reply.streamId)
      await source.hop.write({
        status: 'OK',
        streamId: path.ids[0],
        limit,
        ...(path.port != null ? { port: path.port } : {}),
        ...(source.noiseFirst && reply.noiseFirst === true ? { noiseFirst: true } : {}),
        ...(source.punch && reply.punch === true ? { targetAt: formatEndpoint(target.at) } : {})
      }, { signal })
    } catch (err) {
      path?.destroy()
      stopStream?.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
    this.watch(path, [source.hop.stream, stopStream], limit, { source: source.peer, target: target.peer })
  }

  /** A circuit on a relay worker, or undefined (in-loop, then) when none can take it. */
  private async workerPath (workers: RelayWorkers, init: { hosts: [string, string], sourceStreamId: number, dataLimit?: number }, source: PeerId, target: PeerId): Promise<ForwardPath | undefined> {
    let endedWith: Error | undefined
    let onEnd: ((err: Error) => void) | undefined
    let port = 0
    try {
      const circuit = await workers.open(init, (reason, detail) => {
        if (reason === 'unreached') this.init.onEvent?.({ type: 'worker-unreached', source: source.toString(), target: target.toString(), port, detail })
        endedWith = new Error(detail)
        onEnd?.(endedWith)
      })
      if (circuit == null) {
        this.log.error('no relay worker is left: forwarding the circuit from %p to %p on the main loop', source, target)
        return undefined
      }
      port = circuit.port
      return {
        ids: circuit.ids,
        port: circuit.port,
        join: circuit.join,
        // the worker counts its circuits' bytes and cuts them at their data limit itself
        bytes: () => 0,
        checksDataLimit: false,
        destroy: circuit.close,
        onEnded: (listener) => {
          onEnd = listener
          if (endedWith != null) listener(endedWith)
        }
      }
    } catch (err) {
      this.log.error('a relay worker could not take the circuit from %p to %p, forwarding it on the main loop - %e', source, target, err)
      return undefined
    }
  }

  /** Ends the circuit when either control stream ends, at its duration or data limit, or when the gateway stops. */
  private watch (path: ForwardPath, controls: Stream[], limit: ForwardLimit | undefined, ends: { source: PeerId, target: PeerId }): void {
    const dataLimit = limit?.data == null || !path.checksDataLimit ? undefined : Number(limit.data)
    let ended = false
    const circuit: ForwardedCircuit = {
      bytes: path.bytes,
      dataLimit,
      end: (err?: Error): void => {
        if (ended) return
        ended = true
        clearTimeout(durationTimer)
        this.closedBytes += path.bytes()
        this.circuits.delete(circuit)
        path.destroy()
        for (const control of controls) {
          if (err != null) control.abort(err)
          else control.close().catch((closeErr: Error) => { control.abort(closeErr) })
        }
        this.log('forwarded circuit from %p to %p closed%s', ends.source, ends.target, err != null ? ` - ${err.message}` : '')
      }
    }
    const durationTimer = limit?.durationMs == null
      ? undefined
      : setTimeout(() => { circuit.end(new Error(`duration limit of ${limit.durationMs} ms exceeded`)) }, limit.durationMs)
    durationTimer?.unref()
    for (const control of controls) {
      control.addEventListener('remoteCloseWrite', () => { circuit.end() }, { once: true })
      control.addEventListener('close', () => { circuit.end() }, { once: true })
    }
    this.circuits.add(circuit)
    path.onEnded((err) => { circuit.end(err) })
    if (dataLimit != null && this.dataSweep == null) {
      this.dataSweep = setInterval(() => { this.sweepDataLimits() }, DATA_LIMIT_CHECK_MS)
      this.dataSweep.unref()
    }
    this.opened[path.port != null ? 'worker' : 'in-loop']++
    this.log('forwarded circuit from %p to %p open%s', ends.source, ends.target, path.port != null ? ` on relay worker port ${path.port}` : '')
  }

  /** Ends the circuits past their data limit; the timer stops once no open circuit has one. */
  private sweepDataLimits (): void {
    let limited = false
    for (const circuit of [...this.circuits]) {
      if (circuit.dataLimit == null) continue
      if (circuit.bytes() > circuit.dataLimit) circuit.end(new Error(`data limit of ${circuit.dataLimit} bytes exceeded`))
      else limited = true
    }
    if (!limited) {
      clearInterval(this.dataSweep)
      this.dataSweep = undefined
    }
  }
}

/** where a forwarded circuit's packets are joined: the main event loop's udx socket, or a relay worker */
export type ForwardPathKind = 'in-loop' | 'worker'
export const FORWARD_PATH_KINDS: readonly ForwardPathKind[] = ['in-loop', 'worker']

/** How a circuit's packets get from one peer to the other: on the main loop's udx socket, or in a relay worker. */
interface ForwardPath {
  /** the gateway's stream ids: for the source, for the target */
  ids: [number, number]
  /** the relay worker's UDP port the peers send to; undefined: the gateway's main UDP port */
  port?: number
  /** with the target's stream id: both ends can forward now */
  join: (targetStreamId: number) => Promise<void>
  /** payload bytes counted here so far */
  bytes: () => number
  /** whether the main loop's sweep cuts it at its data limit (a worker does its own) */
  checksDataLimit: boolean
  destroy: () => void
  /** told when the path ended by itself (a worker's data limit, a peer that never reached it, its death) */
  onEnded: (listener: (err: Error) => void) => void
}

/** Both ends on the gateway's main udx socket, joined inside udx on the main event loop. */
function inLoopPath (udx: UdxTransport, source: { at: UdpEndpoint, streamId: number }, targetAt: UdpEndpoint): ForwardPath {
  const pair = udx.forwardPair()
  return {
    ids: pair.ids,
    join: async (targetStreamId) => { pair.join({ remote: source.at, streamId: source.streamId }, { remote: targetAt, streamId: targetStreamId }) },
    bytes: pair.payloadBytes,
    checksDataLimit: true,
    destroy: pair.destroy,
    onEnded: () => {}
  }
}

interface ForwardedCircuit {
  bytes: () => number
  /** payload bytes (both directions) past which the circuit is cut */
  dataLimit?: number
  end: (err?: Error) => void
}

function toForwardLimit (limit: Limit | undefined): ForwardLimit | undefined {
  if (limit == null || (limit.data == null && limit.duration == null)) return undefined
  return { ...(limit.data != null ? { data: limit.data.toString() } : {}), ...(limit.duration != null ? { durationMs: limit.duration } : {}) }
}

export function forwardServer (init: ForwardServerInit): (components: ForwardServerComponents) => ForwardServer {
  return (components) => new ForwardServer(components, init)
}
