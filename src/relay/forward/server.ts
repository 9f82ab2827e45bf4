import { peerIdFromString } from '@libp2p/peer-id'
import { serviceCapabilities } from '@libp2p/interface'
import type { ComponentLogger, Connection, ConnectionGater, PeerId, Stream } from '@libp2p/interface'
import type { ConnectionManager, Registrar, TransportManager } from '@libp2p/interface-internal'
import type { Limit } from '@libp2p/circuit-relay-v2'
import { ProtocolHandler } from '../../core/protocol-handler.js'
import { isUdxMultiaddr, isUdxTransport, toUdpEndpoint } from '../../transport/index.js'
import type { UdpEndpoint, UdxTransport } from '../../transport/index.js'
import { ControlChannel, FORWARD_HOP_PROTOCOL, FORWARD_STOP_PROTOCOL, isStreamId, parseReply } from './messages.js'
import type { ForwardLimit, ForwardStatus } from './messages.js'

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
}

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
  private opened = 0

  constructor (components: ForwardServerComponents, init: ForwardServerInit) {
    super(components, FORWARD_HOP_PROTOCOL, 'natmesh:relay-forward:server', { maxInboundStreams: init.maxInboundHopStreams, runOnLimitedConnection: false })
    this.components = components
    this.init = init
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
  }

  /** payload bytes forwarded so far, both directions, circuits open and closed */
  get forwardedBytes (): number {
    let sum = this.closedBytes
    for (const circuit of this.circuits) sum += circuit.bytes()
    return sum
  }

  /** forwarded circuits opened so far */
  get circuitsOpened (): number {
    return this.opened
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
    await this.join(udx, { hop, at: sourceAt, streamId: request.streamId, peer: connection.remotePeer, noiseFirst: request.noiseFirst === true }, { connection: targetConnection, at: targetAt, peer: target }, limit, signal)
  }

  private async join (udx: UdxTransport, source: { hop: ControlChannel, at: UdpEndpoint, streamId: number, peer: PeerId, noiseFirst: boolean }, target: { connection: Connection, at: UdpEndpoint, peer: PeerId }, limit: ForwardLimit | undefined, signal: AbortSignal): Promise<void> {
    const pair = udx.forwardPair()
    let stopStream: Stream | undefined
    try {
      stopStream = await target.connection.newStream(FORWARD_STOP_PROTOCOL, { signal })
      const stop = new ControlChannel(stopStream)
      await stop.write({ source: source.peer.toString(), streamId: pair.ids[1], limit, ...(source.noiseFirst ? { noiseFirst: true } : {}) }, { signal })
      const reply = parseReply(await stop.read({ signal }))
      if (reply.status !== 'OK' || reply.streamId == null) {
        pair.destroy()
        stopStream.abort(new Error(`the target refused: ${reply.status}`))
        await source.hop.write({ status: reply.status }, { signal })
        await source.hop.stream.close({ signal })
        return
      }
      pair.join({ remote: source.at, streamId: source.streamId }, { remote: target.at, streamId: reply.streamId })
      await source.hop.write({ status: 'OK', streamId: pair.ids[0], limit, ...(source.noiseFirst && reply.noiseFirst === true ? { noiseFirst: true } : {}) }, { signal })
    } catch (err) {
      pair.destroy()
      stopStream?.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
    this.watch(pair, [source.hop.stream, stopStream], limit, { source: source.peer, target: target.peer })
  }

  /** Ends the circuit when either control stream ends, at its duration or data limit, or when the gateway stops. */
  private watch (pair: { payloadBytes: () => number, destroy: () => void }, controls: Stream[], limit: ForwardLimit | undefined, ends: { source: PeerId, target: PeerId }): void {
    const dataLimit = limit?.data == null ? undefined : Number(limit.data)
    let ended = false
    const circuit: ForwardedCircuit = {
      bytes: pair.payloadBytes,
      dataLimit,
      end: (err?: Error): void => {
        if (ended) return
        ended = true
        clearTimeout(durationTimer)
        this.closedBytes += pair.payloadBytes()
        this.circuits.delete(circuit)
        pair.destroy()
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
    if (dataLimit != null && this.dataSweep == null) {
      this.dataSweep = setInterval(() => { this.sweepDataLimits() }, DATA_LIMIT_CHECK_MS)
      this.dataSweep.unref()
    }
    this.opened++
    this.log('forwarded circuit from %p to %p open', ends.source, ends.target)
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
