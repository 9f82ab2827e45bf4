import { serviceCapabilities, transportSymbol } from '@libp2p/interface'
import type { ComponentLogger, Connection, CreateListenerOptions, DialTransportOptions, Listener, Logger, MultiaddrConnection, Transport } from '@libp2p/interface'
import type { UDXStream } from 'udx-native'
import type { Multiaddr } from '@multiformats/multiaddr'
import { UdxListener } from './listener.js'
import { isUdxMultiaddr, toUdpEndpoint } from './multiaddr.js'
import type { UdpEndpoint } from './multiaddr.js'
import { assertLivenessTiming, LivenessWatch } from './liveness.js'
import { OverlaySocket } from './overlay-socket.js'
import { Backoff } from '../core/backoff.js'
import { upgradesWithNoise } from './noise-first.js'
import { toMultiaddrConnection } from './udx-connection.js'
import type { UdxConnectionInit, UdxPath } from './udx-connection.js'

export interface UdxTransportInit {
  /** how long a dial waits for the remote overlay socket to answer; default 5000 */
  dialTimeoutMs?: number
  /** first HELLO retransmit interval, default 50 ms; also the cadence of the dialer's side of a punch */
  helloIntervalMs?: number
  /** HELLO retransmit ceiling, default 1000 ms */
  maxHelloIntervalMs?: number
  /** inbound set-ups in one dial-timeout window before new ones are refused, default 1024 */
  maxPendingInbound?: number
  /** of those, unconfirmed ones (HELLO answered, no data yet) one source IP may hold, default 64 */
  maxPendingInboundPerHost?: number
  /** new inbound set-ups per second one source IP may start, default 100 (0: no rate), after a burst of 200 */
  inboundSetupsPerHostPerSecond?: number
  inboundSetupBurstPerHost?: number
  /**
   * idle keepalive per connection so NAT mappings stay open (Linux drops idle UDP after 30 s); the remote answers
   * each, which is what `deadAfterMs` goes by. Default 5000 ms
   */
  keepAliveMs?: number
  /**
   * whether accepted connections probe too. A gateway leaves that to the peers that dial it (behind NATs, they
   * must hold their mappings open anyway): one probe and answer per peer instead of two. Default true
   */
  inboundKeepAlive?: boolean
  /**
   * a connection whose remote sent no packet for this long is aborted (see liveness.ts); at least three
   * keepalive intervals, so a lost probe is no alarm. 0: off. Default 15000 ms
   */
  deadAfterMs?: number
  /** how long a graceful close waits for the remote before resetting, default 2000 ms */
  closeTimeoutMs?: number
}

/** progress event of a dial (`onProgress`): the remote overlay socket accepted; Noise and Yamux come next */
export const UDX_ANSWERED = 'udx:answered'

export interface UdxTransportComponents {
  logger: ComponentLogger
}

const defaults: Required<UdxTransportInit> = {
  dialTimeoutMs: 5000,
  helloIntervalMs: 50,
  maxHelloIntervalMs: 1000,
  maxPendingInbound: 1024,
  maxPendingInboundPerHost: 64,
  inboundSetupsPerHostPerSecond: 100,
  inboundSetupBurstPerHost: 200,
  keepAliveMs: 5000,
  inboundKeepAlive: true,
  deadAfterMs: 15_000,
  closeTimeoutMs: 2000
}

/** what a forwarded stream announces itself with: one byte, outside the byte stream, that the far end ignores */
const ANNOUNCE = new Uint8Array([0])
const ANNOUNCE_BACKOFF = 1.5

/** udx's packet header, which its byte counts include */
const UDX_HEADER_BYTES = 20

/** liveness checks per dead-after period: the detection lags by at most this fraction */
const LIVENESS_CHECKS_PER_PERIOD = 10

/** Marks the UDP overlay transport so the hole puncher can find it among libp2p's transports. */
export const UDX_TRANSPORT_TAG = '@natmesh/udx'

export class UdxTransport implements Transport {
  readonly [transportSymbol] = true
  readonly [Symbol.toStringTag] = UDX_TRANSPORT_TAG
  readonly [serviceCapabilities] = ['@libp2p/transport']

  private readonly components: UdxTransportComponents
  private readonly init: Required<UdxTransportInit>
  private readonly log: Logger
  socket: OverlaySocket
  /** sockets opened for birthday punches, beside the main one; each closes itself when done */
  private readonly extraSockets = new Set<OverlaySocket>()
  /** dials to these endpoints leave from the given extra socket instead of the main one */
  private readonly routes = new Map<string, OverlaySocket>()
  private readonly liveness?: LivenessWatch
  /** this transport's outbound connections, by the libp2p connection made of them */
  private readonly paths = new WeakMap<Connection, UdxPath>()

  constructor (components: UdxTransportComponents, init: UdxTransportInit = {}) {
    this.components = components
    this.init = { ...defaults, ...init }
    assertLivenessTiming(this.init.keepAliveMs, this.init.deadAfterMs)
    if (this.init.deadAfterMs > 0) {
      this.liveness = new LivenessWatch({ deadAfterMs: this.init.deadAfterMs, checkMs: Math.ceil(this.init.deadAfterMs / LIVENESS_CHECKS_PER_PERIOD) })
    }
    this.log = components.logger.forComponent('natmesh:udx')
    this.socket = this.createSocket()
  }

  private createSocket (onClosed?: () => void): OverlaySocket {
    return new OverlaySocket({
      onClosed,
      helloIntervalMs: this.init.helloIntervalMs,
      maxHelloIntervalMs: this.init.maxHelloIntervalMs,
      dialTimeoutMs: this.init.dialTimeoutMs,
      maxPendingInbound: this.init.maxPendingInbound,
      maxPendingInboundPerHost: this.init.maxPendingInboundPerHost,
      inboundSetupsPerHost: { ratePerSecond: this.init.inboundSetupsPerHostPerSecond, burst: this.init.inboundSetupBurstPerHost },
      keepAliveMs: this.init.keepAliveMs,
      inboundKeepAlive: this.init.inboundKeepAlive,
      log: this.components.logger.forComponent('natmesh:udx:socket')
    })
  }

  /** A stopped node may be started again; its old socket is gone, so it gets a new one. */
  async start (): Promise<void> {
    if (this.socket.closed) this.socket = this.createSocket()
  }

  async dial (ma: Multiaddr, options: DialTransportOptions): Promise<Connection> {
    const remote = toUdpEndpoint(ma)
    if (remote == null) throw new Error(`not a UDP overlay address: ${ma.toString()}`)
    const socket = this.routes.get(endpointKey(remote)) ?? this.socket
    this.log('dialing %a%s', ma, socket === this.socket ? '' : ' from an extra socket')
    const { stream, noiseFirst } = await socket.dial(remote, options.signal, upgradesWithNoise(options.upgrader, 'outbound'))
    // the remote answered over UDP: what a racing dialer waits for before it gives up on UDP (see dialGateway)
    options.onProgress?.({ type: UDX_ANSWERED, detail: remote })
    const maConn = toMultiaddrConnection({
      stream,
      noiseFirst,
      direction: 'outbound',
      remoteAddr: ma,
      log: this.components.logger.forComponent('natmesh:udx:connection'),
      closeTimeoutMs: this.init.closeTimeoutMs,
      liveness: this.liveness
    })
    try {
      const connection = await options.upgrader.upgradeOutbound(maConn, options)
      this.paths.set(connection, maConn)
      return connection
    } catch (err) {
      maConn.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }

  /** udx's view of a connection this transport dialed (not a forwarded circuit's); undefined for any other */
  pathOf (connection: Connection): UdxPath | undefined {
    return this.paths.get(connection)
  }

  /**
   * A connection over a stream of the main socket whose packets a gateway forwards, unread, to another peer's
   * stream (a forwarded circuit, see relay/forward): `id` goes to the gateway, `connect` takes the id of the
   * gateway's end once it is known. Noise and the muxer then run end to end over it, as over a direct stream.
   * `announce`: send datagrams on the stream until anything comes back, for a gateway's relay worker that learns
   * this node's address from its first packet. `bytesReceived`: whether the gateway's end ever answered.
   */
  forwardedStream (): { id: number, connect: (gateway: UdpEndpoint, gatewayStreamId: number, addrs: Pick<UdxConnectionInit, 'direction' | 'remoteAddr' | 'localAddr' | 'noiseFirst'>, options?: { announce?: boolean }) => MultiaddrConnection, bytesReceived: () => number, destroy: () => void } {
    const stream = this.socket.openStream()
    stream.on('error', () => {})
    return {
      id: stream.id,
      connect: (gateway, gatewayStreamId, addrs, options = {}) => {
        this.socket.connectStream(stream, gateway, gatewayStreamId, true)
        if (options.announce === true) this.announce(stream)
        return toMultiaddrConnection({
          ...addrs,
          stream,
          log: this.components.logger.forComponent('natmesh:udx:forwarded'),
          closeTimeoutMs: this.init.closeTimeoutMs,
          liveness: this.liveness
        })
      },
      bytesReceived: () => stream.bytesReceived,
      destroy: () => { stream.destroy() }
    }
  }

  /** Datagrams on `stream`, HELLO's cadence, until the stream receives anything, closes or the dial times out. */
  private announce (stream: UDXStream): void {
    const intervals = new Backoff({ initialMs: this.init.helloIntervalMs, maxMs: this.init.maxHelloIntervalMs, factor: ANNOUNCE_BACKOFF })
    const until = Date.now() + this.init.dialTimeoutMs
    let timer: NodeJS.Timeout | undefined
    const send = (): void => {
      if (stream.destroyed || stream.bytesReceived > 0 || Date.now() > until) return
      stream.send(ANNOUNCE).catch(() => {})
      timer = setTimeout(send, intervals.next())
      timer.unref()
    }
    stream.once('close', () => { clearTimeout(timer) })
    send()
  }

  /**
   * The gateway's two ends of a forwarded circuit (see `forwardedStream`): two streams of the main socket, ids
   * known now; `join` connects each to one peer's stream and has each relay what it receives to the other inside
   * udx, so no payload reaches JS. `payloadBytes`: what both ends received past udx's headers, retransmissions
   * included. `destroy` ends the circuit.
   */
  forwardPair (): { ids: [number, number], join: (a: { remote: UdpEndpoint, streamId: number }, b: { remote: UdpEndpoint, streamId: number }) => void, payloadBytes: () => number, destroy: () => void } {
    const ends = [this.socket.openStream(), this.socket.openStream()] as const
    for (const end of ends) end.on('error', () => {})
    return {
      ids: [ends[0].id, ends[1].id],
      join: (a, b) => {
        this.socket.connectStream(ends[0], a.remote, a.streamId, false)
        this.socket.connectStream(ends[1], b.remote, b.streamId, false)
        ends[0].relayTo(ends[1])
        ends[1].relayTo(ends[0])
      },
      payloadBytes: () => ends.reduce((sum, end) => sum + end.bytesReceived - UDX_HEADER_BYTES * end.packetsReceived, 0),
      destroy: () => { for (const end of ends) end.destroy() }
    }
  }

  /** Sends punch datagrams from the node's one socket, opening its NAT for `remote`, until `signal` aborts. */
  async punch (remote: UdpEndpoint, signal: AbortSignal, intervalMs = this.init.helloIntervalMs): Promise<number> {
    return this.socket.punch(remote, intervalMs, signal)
  }

  /**
   * Opens `count` extra overlay sockets on ephemeral ports of the main socket's address family. Each answers
   * probes and accepts connections like the main socket; the caller closes the ones it does not keep.
   */
  openExtraSockets (count: number): OverlaySocket[] {
    const main = this.socket.address()
    if (main == null) throw new Error('extra sockets need the main overlay socket to be bound first')
    const sockets: OverlaySocket[] = []
    try {
      for (let i = 0; i < count; i++) {
        const socket: OverlaySocket = this.createSocket(() => { this.forgetExtraSocket(socket) })
        socket.bind(main.host, 0)
        socket.setInboundHandler(this.socket.inbound, this.socket.acceptsNoiseFirst)
        this.extraSockets.add(socket)
        sockets.push(socket)
      }
    } catch (err) {
      for (const socket of sockets) void this.closeExtraSocket(socket)
      throw err
    }
    return sockets
  }

  async closeExtraSocket (socket: OverlaySocket): Promise<void> {
    this.forgetExtraSocket(socket)
    await socket.close()
  }

  private forgetExtraSocket (socket: OverlaySocket): void {
    this.extraSockets.delete(socket)
    for (const [key, routed] of this.routes) if (routed === socket) this.routes.delete(key)
  }

  /** Until the returned function is called, dials to `remote` leave from `socket` (the one a punch got through). */
  routeVia (remote: UdpEndpoint, socket: OverlaySocket): () => void {
    const key = endpointKey(remote)
    this.routes.set(key, socket)
    return () => { if (this.routes.get(key) === socket) this.routes.delete(key) }
  }

  /** extra sockets open right now */
  get extraSocketCount (): number {
    return this.extraSockets.size
  }

  createListener (options: CreateListenerOptions): Listener {
    return new UdxListener({
      socket: this.socket,
      upgrader: options.upgrader,
      logger: this.components.logger,
      closeTimeoutMs: this.init.closeTimeoutMs,
      liveness: this.liveness
    })
  }

  listenFilter (multiaddrs: Multiaddr[]): Multiaddr[] {
    return multiaddrs.filter(isUdxMultiaddr)
  }

  dialFilter (multiaddrs: Multiaddr[]): Multiaddr[] {
    return multiaddrs.filter(isUdxMultiaddr)
  }

  async stop (): Promise<void> {
    await Promise.all([...this.extraSockets].map(async socket => { await this.closeExtraSocket(socket) }))
    await this.socket.close()
  }
}

function endpointKey (endpoint: UdpEndpoint): string {
  return `${endpoint.host}:${endpoint.port}`
}

export function isUdxTransport (transport: Transport): transport is UdxTransport {
  return transport[Symbol.toStringTag] === UDX_TRANSPORT_TAG
}
