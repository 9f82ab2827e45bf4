import { peerIdFromString } from '@libp2p/peer-id'
import { serviceCapabilities, transportSymbol } from '@libp2p/interface'
import type { ComponentLogger, Connection, ConnectionGater, ConnectionLimits, CreateListenerOptions, DialTransportOptions, Listener, Logger, MultiaddrConnection, PeerId, Startable, Stream, Transport, Upgrader } from '@libp2p/interface'
import type { ConnectionManager, Registrar, TransportManager } from '@libp2p/interface-internal'
import { CODE_P2P, CODE_P2P_CIRCUIT, multiaddr } from '@multiformats/multiaddr'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isUdxMultiaddr, isUdxTransport, toUdpEndpoint, upgradesWithNoise } from '../../transport/index.js'
import type { UdpEndpoint, UdxTransport } from '../../transport/index.js'
import { ControlChannel, FORWARD_HOP_PROTOCOLS, FORWARD_HOP_WORKERS_PROTOCOL, FORWARD_STOP_PROTOCOLS, FORWARD_STOP_WORKERS_PROTOCOL, isStreamId, parseEndpoint, parseLimit, parsePort, parseReply } from './messages.js'
import type { ForwardLimit } from './messages.js'

const CIRCUIT_RELAY_TRANSPORT_TAG = '@libp2p/circuit-relay-v2-transport'
export const FORWARDED_CIRCUIT_TRANSPORT_TAG = '@natmesh/relay-forward'
const NEGOTIATION_TIMEOUT_MS = 10_000
/** forwarded circuits a peer accepts at once from one gateway connection */
const MAX_INBOUND_CIRCUITS = 256

export interface ForwardedCircuitComponents {
  registrar: Registrar
  connectionManager: ConnectionManager
  connectionGater: ConnectionGater
  transportManager: TransportManager
  upgrader: Upgrader
  peerId: PeerId
  logger: ComponentLogger
}

export interface ForwardedCircuitsInit {
  /**
   * This node hole punches: it asks its gateway for the other peer's overlay mapping with each circuit (and lets
   * the gateway pass its own on), and is told it, with when the circuit's connection began, while that
   * connection is still in its handshake
   *
   * @default undefined (no punching: nothing asked, nothing passed on)
   */
  punchEarly?: (peer: PeerId, at: UdpEndpoint, relayedSince: number) => void
}

/** Why a forwarded circuit was not made; the dial then goes over circuit relay v2 instead. */
class NotForwardedError extends Error {
  override name = 'NotForwardedError'
}

/**
 * Dials relayed addresses (`…/p2p/<gateway>/p2p-circuit/p2p/<peer>`) as forwarded circuits where the gateway
 * connection runs on the UDP overlay (see server.ts): a udx stream of this node's socket whose packets the gateway
 * forwards to the target's, with noise and the muxer end to end. The connection looks like any circuit relay one
 * (the circuit address, the reservation's limits), so sessions and hole punching treat it the same. Where
 * forwarding is not on offer (TCP, a gateway or target that refuses) the dial goes to circuit relay v2, which must
 * be among the node's transports after this one. Also accepts forwarded circuits its gateways offer.
 *
 * A gateway with relay workers may name a worker's UDP port for the circuit; the stream then sends there. Where
 * that port cannot be reached (a firewall that opens only the main port), the circuit fails before its upgrade
 * and the dial is made again with in-loop forwarding, as are later dials through that gateway.
 */
export class ForwardedCircuitTransport implements Transport, Startable {
  readonly [transportSymbol] = true
  readonly [Symbol.toStringTag] = FORWARDED_CIRCUIT_TRANSPORT_TAG
  readonly [serviceCapabilities] = ['@libp2p/transport']
  private readonly components: ForwardedCircuitComponents
  private readonly init: ForwardedCircuitsInit
  private readonly log: Logger
  private readonly shutdown = new AbortController()
  /** gateways whose relay worker ports this node could not reach: their circuits are asked for in-loop */
  private readonly workersUnreachable = new Set<string>()

  constructor (components: ForwardedCircuitComponents, init: ForwardedCircuitsInit = {}) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('natmesh:relay-forward')
  }

  async start (): Promise<void> {
    for (const protocol of FORWARD_STOP_PROTOCOLS) {
      await this.components.registrar.handle(protocol, (stream, connection) => {
        this.onStop(stream, connection).catch(err => {
          this.log.error('forwarded circuit offered by %p failed - %e', connection.remotePeer, err)
          stream.abort(err)
        })
      }, { maxInboundStreams: MAX_INBOUND_CIRCUITS, runOnLimitedConnection: false })
    }
  }

  async stop (): Promise<void> {
    this.shutdown.abort()
    for (const protocol of FORWARD_STOP_PROTOCOLS) await this.components.registrar.unhandle(protocol)
  }

  async dial (ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    try {
      return await this.dialForwarded(ma, options)
    } catch (err) {
      if (!(err instanceof NotForwardedError) || options.signal.aborted) throw err
      this.log('no forwarded circuit to %a (%s): circuit relay v2 instead', ma, err.message)
    }
    const circuitRelay = this.components.transportManager.getTransports().find(t => t[Symbol.toStringTag] === CIRCUIT_RELAY_TRANSPORT_TAG)
    if (circuitRelay == null) throw new Error(`no forwarded circuit to ${ma.toString()}, and no circuit relay transport to fall back to`)
    return circuitRelay.dial(ma, options)
  }

  private async dialForwarded (ma: Multiaddr, options: DialTransportOptions, inLoop = false): Promise<Connection> {
    const text = ma.toString()
    const [relayPart, targetPart] = [text.slice(0, text.indexOf('/p2p-circuit')), text.slice(text.lastIndexOf('/p2p-circuit') + '/p2p-circuit'.length)]
    const relayId = multiaddr(relayPart).getComponents().findLast(c => c.code === CODE_P2P)?.value
    const targetId = multiaddr(targetPart).getComponents().findLast(c => c.code === CODE_P2P)?.value
    if (relayId == null || targetId == null) throw new NotForwardedError('the address names no gateway or no target')
    const udx = this.udx()
    const gateway = this.components.connectionManager.getConnections(peerIdFromString(relayId))
      .find(conn => conn.status === 'open' && conn.limits == null && isUdxMultiaddr(conn.remoteAddr))
    const gatewayAt = gateway == null ? undefined : toUdpEndpoint(gateway.remoteAddr)
    if (udx == null || gateway == null || gatewayAt == null) throw new NotForwardedError('no UDP overlay connection to the gateway')
    inLoop ||= this.workersUnreachable.has(relayId)
    const end = udx.forwardedStream()
    const offerNoiseFirst = upgradesWithNoise(options.upgrader, 'outbound')
    let stream: Stream | undefined
    let reply
    try {
      const signal = AbortSignal.any([options.signal, AbortSignal.timeout(NEGOTIATION_TIMEOUT_MS)])
      stream = await gateway.newStream(FORWARD_HOP_PROTOCOLS, { signal }).catch((err: Error) => { throw new NotForwardedError(`the gateway offers none: ${err.message}`) })
      const hop = new ControlChannel(stream)
      await hop.write({ target: targetId, streamId: end.id, ...(inLoop ? { inLoop } : {}), ...(offerNoiseFirst ? { noiseFirst: true } : {}), ...(this.init.punchEarly != null ? { punch: true } : {}) }, { signal })
      reply = parseReply(await hop.read({ signal }))
      if (reply.status !== 'OK' || reply.streamId == null) throw new NotForwardedError(`the gateway answered ${reply.status}`)
      if (reply.port != null && stream.protocol !== FORWARD_HOP_WORKERS_PROTOCOL) throw new NotForwardedError('the gateway named a relay worker port on a protocol without them')
    } catch (err) {
      end.destroy()
      stream?.abort(err instanceof Error ? err : new Error(String(err)))
      throw err instanceof NotForwardedError ? err : new NotForwardedError(err instanceof Error ? err.message : String(err))
    }
    const workerPort = reply.port
    const maConn = end.connect({ ...gatewayAt, port: workerPort ?? gatewayAt.port }, reply.streamId, {
      direction: 'outbound',
      noiseFirst: offerNoiseFirst && reply.noiseFirst === true,
      remoteAddr: ma,
      localAddr: multiaddr(relayPart).encapsulate(`/p2p-circuit/p2p/${this.components.peerId.toString()}`)
    })
    tieToControl(maConn, stream)
    this.log('forwarded circuit to %a open%s', ma, workerPort != null ? ` through relay worker port ${workerPort}` : '')
    const targetAt = parseEndpoint(reply.targetAt)
    if (targetAt != null) this.init.punchEarly?.(peerIdFromString(targetId), targetAt, maConn.timeline.open)
    try {
      return await options.upgrader.upgradeOutbound(maConn, { ...options, limits: toConnectionLimits(reply.limit) })
    } catch (err) {
      maConn.abort(err instanceof Error ? err : new Error(String(err)))
      // nothing ever came back: the worker's port is out of reach (otherwise the failure is not the port's)
      if (workerPort == null || end.bytesReceived() > 0 || options.signal.aborted) throw err
      this.workersUnreachable.add(relayId)
      this.log.error('forwarded circuit to %a through relay worker port %d failed (%s): dialing it again with in-loop forwarding, as all later circuits through this gateway', ma, workerPort, err instanceof Error ? err.message : String(err))
      return this.dialForwarded(ma, options, true)
    }
  }

  private async onStop (stream: Stream, connection: Connection): Promise<void> {
    const signal = AbortSignal.any([this.shutdown.signal, AbortSignal.timeout(NEGOTIATION_TIMEOUT_MS)])
    const stop = new ControlChannel(stream)
    const request = await stop.read({ signal })
    let source: PeerId
    let limit: ForwardLimit | undefined
    let workerPort: number | undefined
    try {
      if (typeof request.source !== 'string' || !isStreamId(request.streamId)) throw new Error('no source or stream id')
      source = peerIdFromString(request.source)
      limit = parseLimit(request.limit)
      workerPort = parsePort(request.port)
      if (workerPort != null && stream.protocol !== FORWARD_STOP_WORKERS_PROTOCOL) throw new Error('a relay worker port on a protocol without them')
    } catch (err) {
      this.log('malformed forwarded circuit offer from %p - %e', connection.remotePeer, err)
      await stop.write({ status: 'MALFORMED' }, { signal })
      await stream.close({ signal })
      return
    }
    const udx = this.udx()
    const gatewayAt = toUdpEndpoint(connection.remoteAddr)
    if (udx == null || gatewayAt == null) {
      await stop.write({ status: 'UNAVAILABLE' }, { signal })
      await stream.close({ signal })
      return
    }
    if ((await this.components.connectionGater.denyInboundRelayedConnection?.(connection.remotePeer, source)) === true) {
      await stop.write({ status: 'PERMISSION_DENIED' }, { signal })
      await stream.close({ signal })
      return
    }
    const end = udx.forwardedStream()
    const noiseFirst = request.noiseFirst === true && upgradesWithNoise(this.components.upgrader, 'inbound')
    // connected before the reply: the dialer's first packets may follow the gateway's answer at once. A relay
    // worker learns this node's address from its first packet, and this side would send none before the
    // dialer's, so it announces itself
    const maConn = end.connect({ ...gatewayAt, port: workerPort ?? gatewayAt.port }, request.streamId, {
      direction: 'inbound',
      noiseFirst,
      remoteAddr: connection.remoteAddr.encapsulate(`/p2p-circuit/p2p/${source.toString()}`)
    }, { announce: workerPort != null })
    tieToControl(maConn, stream)
    const sourceAt = this.init.punchEarly != null ? parseEndpoint(request.sourceAt) : undefined
    if (sourceAt != null) this.init.punchEarly?.(source, sourceAt, maConn.timeline.open)
    try {
      await stop.write({ status: 'OK', streamId: end.id, ...(noiseFirst ? { noiseFirst: true } : {}), ...(sourceAt != null ? { punch: true } : {}) }, { signal })
    } catch (err) {
      maConn.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
    const upgradeSignal = this.components.upgrader.createInboundAbortSignal(this.shutdown.signal)
    try {
      await this.components.upgrader.upgradeInbound(maConn, { limits: toConnectionLimits(limit), signal: upgradeSignal })
    } catch (err) {
      maConn.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    } finally {
      upgradeSignal.clear()
    }
  }

  private udx (): UdxTransport | undefined {
    return this.components.transportManager.getTransports().find(isUdxTransport)
  }

  createListener (_options: CreateListenerOptions): Listener {
    throw new Error('forwarded circuits are offered over gateway connections; there is nothing to listen on')
  }

  listenFilter (): Multiaddr[] {
    return []
  }

  dialFilter (multiaddrs: Multiaddr[]): Multiaddr[] {
    // `/p2p-circuit/p2p/<peer>` only: `/p2p-circuit/webrtc/…` is WebRTC signalled over a relay, ice mode's dial
    return multiaddrs.filter(ma => {
      const components = ma.getComponents()
      const circuit = components.findIndex(c => c.code === CODE_P2P_CIRCUIT)
      const after = components.slice(circuit + 1)
      return circuit >= 0 && after.length === 1 && after[0]?.code === CODE_P2P
    })
  }
}

/**
 * The control stream lives as long as the circuit: the gateway ends it to end the circuit (limits, shutdown), and
 * closing it tells the gateway the connection is over, so it drops its two ends.
 */
function tieToControl (maConn: MultiaddrConnection, control: Stream): void {
  maConn.addEventListener('close', () => {
    if (control.status === 'open') control.close().catch((err: Error) => { control.abort(err) })
  }, { once: true })
  const onControlEnd = (): void => {
    if (maConn.status === 'open') maConn.abort(new Error('the gateway ended the forwarded circuit'))
  }
  control.addEventListener('remoteCloseWrite', onControlEnd, { once: true })
  control.addEventListener('close', onControlEnd, { once: true })
}

function toConnectionLimits (limit: ForwardLimit | undefined): ConnectionLimits | undefined {
  if (limit == null || (limit.data == null && limit.durationMs == null)) return undefined
  return { ...(limit.data != null ? { bytes: BigInt(limit.data) } : {}), ...(limit.durationMs != null ? { seconds: limit.durationMs / 1000 } : {}) }
}

export function forwardedCircuits (init: ForwardedCircuitsInit = {}): (components: ForwardedCircuitComponents) => Transport {
  return (components) => new ForwardedCircuitTransport(components, init)
}
