import UDX from 'udx-native'
import { TimeoutError } from '@libp2p/interface'
import type { UDXSocket, UDXStream } from 'udx-native'
import type { Logger } from '@libp2p/interface'
import { decodeControlMessage, encodeControlMessage, isControlMessage, MessageType, RejectReason } from './control-message.js'
import type { ControlMessage } from './control-message.js'
import type { UdpEndpoint } from './multiaddr.js'
import { TokenBuckets } from '../core/token-buckets.js'
import { Backoff } from '../core/backoff.js'

/** each HELLO retransmit interval is half as long again as the one before, up to maxHelloIntervalMs */
const HELLO_BACKOFF = 1.5

export interface OverlaySocketInit {
  /** first HELLO retransmit interval; short, because a punched path opens as soon as the peer's NAT sees traffic */
  helloIntervalMs: number
  /** retransmit interval ceiling after exponential growth */
  maxHelloIntervalMs: number
  /** how long a dial retransmits HELLO before giving up */
  dialTimeoutMs: number
  /**
   * inbound set-ups accepted within one dial-timeout window (an entry is kept that long so retransmitted
   * HELLOs get the same ACCEPT); past it new HELLOs are refused, so a flood can't exhaust memory
   */
  maxPendingInbound: number
  /**
   * set-ups one source IP may hold unconfirmed (HELLO answered, no data yet), so a flood from one source cannot
   * fill `maxPendingInbound` for everybody; a real dialer confirms within a round trip
   */
  maxPendingInboundPerHost: number
  /** new inbound set-ups per second per source IP (token bucket; 0 turns the rate off) and the burst */
  inboundSetupsPerHost: { ratePerSecond: number, burst: number }
  /** idle keepalive on every dialed stream (and accepted ones, see below), so NAT mappings along the path stay open */
  keepAliveMs: number
  /** accepted streams probe too (else only dialed ones do, and the dialers keep both ends' silence short) */
  inboundKeepAlive: boolean
  log: Logger
  /** told once the socket has closed, however that came about */
  onClosed?: () => void
}

/**
 * `firstChunk`: the dialer's first bytes, already read off the stream; they come before anything else.
 * `noiseFirst`: both ends agreed to start with Noise (see noise-first.ts)
 */
export type InboundStreamHandler = (stream: UDXStream, remote: UdpEndpoint, firstChunk: Uint8Array, noiseFirst: boolean) => void

/** a dialled stream, and whether the listener agreed to noise first */
export interface DialedStream {
  stream: UDXStream
  noiseFirst: boolean
}

/** Called for each PROBE datagram carrying the token the handler was registered for. */
export type ProbeHandler = (remote: UdpEndpoint, answer: boolean) => void

interface PendingDial {
  stream: UDXStream
  remote: UdpEndpoint
  noiseFirstOffered: boolean
  resolve: (noiseFirst: boolean) => void
  reject: (err: Error) => void
}

export class DialRejectedError extends Error {
  override name = 'DialRejectedError'
}

/**
 * The one UDP socket of a node. It listens, dials and punches, so the NAT mapping a gateway observes for this
 * node is the same one other peers are told to dial. Streams are udx (reliable, congestion controlled); a tiny
 * HELLO/ACCEPT exchange of raw datagrams agrees on stream ids before a stream connects.
 */
export class OverlaySocket {
  private readonly udx = new UDX()
  private readonly socket: UDXSocket
  private readonly init: OverlaySocketInit
  private readonly log: Logger
  private readonly pendingDials = new Map<number, PendingDial>()
  /** ids of this socket's streams until they close: a new id must be none of them (a gateway holds thousands) */
  private readonly streamIds = new Set<number>()
  /** inbound set-ups by `host:port/dialerStreamId`, so a retransmitted HELLO gets the same ACCEPT */
  private readonly accepted = new Map<string, { stream: UDXStream, noiseFirst: boolean }>()
  /** unconfirmed inbound set-ups by source IP */
  private readonly unconfirmed = new Map<string, number>()
  private readonly setupRate: TokenBuckets
  private inboundHandler?: InboundStreamHandler
  /** whether an inbound HELLO's offer of noise first is taken (the listener's upgrader would settle on Noise) */
  private acceptNoiseFirst = false
  /** birthday punch attempts listening on this socket, by token (hex) */
  private readonly probeHandlers = new Map<string, ProbeHandler>()
  private closeWhenIdleRequested = false
  private isClosed = false

  constructor (init: OverlaySocketInit) {
    this.init = init
    this.log = init.log
    this.setupRate = new TokenBuckets(init.inboundSetupsPerHost)
    this.socket = this.udx.createSocket()
    this.socket.on('message', (buf, rinfo) => { this.onDatagram(buf, rinfo) })
    this.socket.on('error', (err) => { this.log.error('overlay socket error - %e', err) })
  }

  get closed (): boolean {
    return this.isClosed
  }

  get bound (): boolean {
    return this.socket.bound
  }

  address (): UdpEndpoint | undefined {
    const address = this.socket.address()
    if (address == null) return undefined
    return { host: address.host, port: address.port, family: address.family === 6 ? 6 : 4 }
  }

  bind (host: string, port: number): UdpEndpoint {
    if (this.isClosed) throw new Error('overlay socket is closed')
    const current = this.address()
    if (current != null) {
      if ((port === 0 || port === current.port) && host === current.host) return current
      throw new Error(`the UDP overlay uses one socket per node; it is already bound to ${current.host}:${current.port}, cannot also listen on ${host}:${port}`)
    }
    this.socket.bind(port, host)
    const bound = this.address()
    if (bound == null) throw new Error(`could not bind UDP socket to ${host}:${port}`)
    this.log('overlay socket bound to %s:%d', bound.host, bound.port)
    return bound
  }

  get inbound (): InboundStreamHandler | undefined {
    return this.inboundHandler
  }

  get acceptsNoiseFirst (): boolean {
    return this.acceptNoiseFirst
  }

  setInboundHandler (handler: InboundStreamHandler | undefined, acceptNoiseFirst = false): void {
    this.inboundHandler = handler
    this.acceptNoiseFirst = handler != null && acceptNoiseFirst
  }

  /** Routes PROBE datagrams with `token` to `handler` until the returned function is called. */
  onProbe (token: Uint8Array, handler: ProbeHandler): () => void {
    const key = Buffer.from(token).toString('hex')
    this.probeHandlers.set(key, handler)
    return () => { if (this.probeHandlers.get(key) === handler) this.probeHandlers.delete(key) }
  }

  sendProbe (remote: UdpEndpoint, token: Uint8Array, answer: boolean): void {
    if (this.isClosed) return
    this.send({ type: MessageType.PROBE, token, answer }, remote)
  }

  /**
   * Closes the socket once it carries no stream and no dial: an extra socket lives exactly as long as the one
   * connection a birthday punch gave it.
   */
  closeWhenIdle (): void {
    this.closeWhenIdleRequested = true
    this.closeIfIdle()
  }

  /**
   * Opens a stream to a remote overlay socket. HELLO is retransmitted until the listener accepts, which also
   * makes the dial the punch for the dialer's side of a hole punch. `offerNoiseFirst`: HELLO offers noise first.
   */
  async dial (remote: UdpEndpoint, signal: AbortSignal, offerNoiseFirst = false): Promise<DialedStream> {
    if (this.isClosed) throw new Error('overlay socket is closed')
    if (remote.port === 0) throw new Error(`cannot dial ${remote.host}:0: port 0 is not a reachable UDP port`)
    if (!this.bound) this.bind(remote.family === 6 ? '::' : '0.0.0.0', 0)
    const stream = this.createStream()
    const hello = encodeControlMessage({ type: MessageType.HELLO, dialerStreamId: stream.id, ...(offerNoiseFirst ? { noiseFirst: true } : {}) })
    const timeout = AbortSignal.timeout(this.init.dialTimeoutMs)
    const abort = AbortSignal.any([signal, timeout])
    let timer: NodeJS.Timeout | undefined
    let noiseFirst = false

    try {
      noiseFirst = await new Promise<boolean>((resolve, reject) => {
        this.pendingDials.set(stream.id, { stream, remote, noiseFirstOffered: offerNoiseFirst, resolve, reject })
        const intervals = new Backoff({ initialMs: this.init.helloIntervalMs * HELLO_BACKOFF, maxMs: this.init.maxHelloIntervalMs, factor: HELLO_BACKOFF })
        const send = (): void => {
          this.socket.trySend(hello, remote.port, remote.host)
          timer = setTimeout(send, intervals.next())
        }
        const onAbort = (): void => {
          reject(timeout.aborted
            ? new TimeoutError(`no answer from ${remote.host}:${remote.port} over UDP within ${this.init.dialTimeoutMs} ms`)
            : abort.reason instanceof Error ? abort.reason : new Error('dial aborted'))
        }
        if (abort.aborted) { onAbort(); return }
        abort.addEventListener('abort', onAbort, { once: true })
        send()
      })
    } catch (err) {
      stream.destroy()
      throw err
    } finally {
      clearTimeout(timer)
      this.pendingDials.delete(stream.id)
      this.closeIfIdle()
    }
    return { stream, noiseFirst }
  }

  /** Sends punch datagrams to `remote` every `intervalMs` until `signal` aborts. */
  async punch (remote: UdpEndpoint, intervalMs: number, signal: AbortSignal): Promise<number> {
    if (!this.bound) throw new Error('cannot punch before the overlay socket is bound')
    let sent = 0
    while (!signal.aborted && !this.isClosed) {
      this.socket.trySend(encodeControlMessage({ type: MessageType.PUNCH }), remote.port, remote.host)
      sent++
      await new Promise<void>(resolve => {
        const timer = setTimeout(resolve, intervalMs)
        signal.addEventListener('abort', () => { clearTimeout(timer); resolve() }, { once: true })
      })
    }
    return sent
  }

  async close (): Promise<void> {
    if (this.isClosed) return
    this.isClosed = true
    for (const pending of this.pendingDials.values()) pending.reject(new Error('overlay socket closed'))
    for (const stream of this.socket.streams) stream.destroy()
    await this.socket.close()
    this.init.onClosed?.()
  }

  /**
   * A stream of this socket that is not connected yet: its id goes to a forwarding gateway first, which names
   * its own end in return (see `connectStream`). Forwarded circuits need the ids agreed before any packet.
   */
  openStream (): UDXStream {
    if (this.isClosed) throw new Error('overlay socket is closed')
    return this.createStream()
  }

  /** Points `stream` at stream `remoteId` of `remote`; `keepAlive` for an end that must hold NAT mappings open. */
  connectStream (stream: UDXStream, remote: UdpEndpoint, remoteId: number, keepAlive: boolean): void {
    if (!this.bound) throw new Error('cannot connect a stream before the overlay socket is bound')
    stream.connect(this.socket, remoteId, remote.port, remote.host)
    if (keepAlive) stream.setKeepalive(this.init.keepAliveMs)
    stream.once('close', () => { this.closeIfIdle() })
  }

  private createStream (): UDXStream {
    let id: number
    do {
      id = crypto.getRandomValues(new Uint32Array(1))[0] ?? 0
    } while (id === 0 || this.pendingDials.has(id) || this.streamIds.has(id))
    const stream = this.udx.createStream(id)
    this.streamIds.add(id)
    stream.once('close', () => { this.streamIds.delete(id) })
    return stream
  }

  private onDatagram (buf: Buffer, rinfo: { host: string, port: number, family: number }): void {
    if (!isControlMessage(buf)) return
    let message: ControlMessage
    try {
      message = decodeControlMessage(buf)
    } catch (err) {
      // a stray or hostile datagram must never take the socket down
      this.log('ignoring malformed control datagram from %s:%d - %e', rinfo.host, rinfo.port, err)
      return
    }
    const remote: UdpEndpoint = { host: rinfo.host, port: rinfo.port, family: rinfo.family === 6 ? 6 : 4 }
    switch (message.type) {
      case MessageType.HELLO: this.onHello(message.dialerStreamId, remote, message.noiseFirst === true); break
      case MessageType.ACCEPT: this.onAccept(message.dialerStreamId, message.listenerStreamId, remote, message.noiseFirst === true); break
      case MessageType.REJECT: this.onReject(message.dialerStreamId, message.reason, remote); break
      case MessageType.PUNCH: break
      case MessageType.PROBE: this.probeHandlers.get(Buffer.from(message.token).toString('hex'))?.(remote, message.answer); break
    }
  }

  private closeIfIdle (): void {
    if (!this.closeWhenIdleRequested || this.isClosed || this.pendingDials.size > 0) return
    // udx removes a stream from the socket's set after its close event, so look again on the next turn
    setImmediate(() => {
      if (this.isClosed || this.pendingDials.size > 0 || this.socket.streams.size > 0) return
      this.close().catch(err => { this.log.error('closing idle overlay socket failed - %e', err) })
    })
  }

  private onHello (dialerStreamId: number, remote: UdpEndpoint, noiseFirstOffered: boolean): void {
    const key = `${remote.host}:${remote.port}/${dialerStreamId}`
    const existing = this.accepted.get(key)
    if (existing != null) {
      this.sendAccept(dialerStreamId, existing.stream.id, existing.noiseFirst, remote)
      return
    }
    if (this.inboundHandler == null) {
      this.send({ type: MessageType.REJECT, dialerStreamId, reason: RejectReason.NOT_LISTENING }, remote)
      return
    }
    const unconfirmed = this.unconfirmed.get(remote.host) ?? 0
    if (this.accepted.size >= this.init.maxPendingInbound || unconfirmed >= this.init.maxPendingInboundPerHost || !this.setupRate.take(remote.host)) {
      this.send({ type: MessageType.REJECT, dialerStreamId, reason: RejectReason.OVERLOADED }, remote)
      return
    }
    this.unconfirmed.set(remote.host, unconfirmed + 1)
    let confirmed = false
    const confirm = (): void => {
      if (confirmed) return
      confirmed = true
      const left = (this.unconfirmed.get(remote.host) ?? 1) - 1
      if (left > 0) this.unconfirmed.set(remote.host, left)
      else this.unconfirmed.delete(remote.host)
    }
    const stream = this.createStream()
    stream.connect(this.socket, dialerStreamId, remote.port, remote.host)
    if (this.init.inboundKeepAlive) stream.setKeepalive(this.init.keepAliveMs)
    const noiseFirst = noiseFirstOffered && this.acceptNoiseFirst
    this.accepted.set(key, { stream, noiseFirst })
    // keep the entry while the dialer may still be retransmitting HELLO, then forget it
    const forget = setTimeout(() => this.accepted.delete(key), this.init.dialTimeoutMs + 1000)
    stream.once('close', () => { confirm(); clearTimeout(forget); this.accepted.delete(key); this.closeIfIdle() })
    stream.on('error', () => {})
    this.sendAccept(dialerStreamId, stream.id, noiseFirst, remote)
    // HELLO proves nothing about its source address; a spoofer never sees our ACCEPT, so it can't send the
    // first bytes. Only a dialer that does reaches libp2p's (globally limited) pending-upgrade slots.
    const unanswered = setTimeout(() => { stream.destroy() }, this.init.dialTimeoutMs)
    stream.once('data', (firstChunk: Uint8Array) => {
      clearTimeout(unanswered)
      confirm()
      if (this.inboundHandler == null) {
        stream.destroy()
        return
      }
      this.inboundHandler(stream, remote, firstChunk, noiseFirst)
    })
  }

  private sendAccept (dialerStreamId: number, listenerStreamId: number, noiseFirst: boolean, remote: UdpEndpoint): void {
    this.send({ type: MessageType.ACCEPT, dialerStreamId, listenerStreamId, ...(noiseFirst ? { noiseFirst: true } : {}) }, remote)
  }

  private onAccept (dialerStreamId: number, listenerStreamId: number, remote: UdpEndpoint, noiseFirst: boolean): void {
    const pending = this.pendingDials.get(dialerStreamId)
    // late duplicate ACCEPTs, or ones from an address we never dialed, are ignored
    if (pending == null || pending.remote.port !== remote.port || pending.remote.host !== remote.host) return
    this.pendingDials.delete(dialerStreamId)
    pending.stream.connect(this.socket, listenerStreamId, remote.port, remote.host)
    pending.stream.setKeepalive(this.init.keepAliveMs)
    pending.stream.once('close', () => { this.closeIfIdle() })
    // an agreement we did not ask for is no agreement
    pending.resolve(noiseFirst && pending.noiseFirstOffered)
  }

  private onReject (dialerStreamId: number, reason: RejectReason, remote: UdpEndpoint): void {
    const pending = this.pendingDials.get(dialerStreamId)
    if (pending == null || pending.remote.port !== remote.port || pending.remote.host !== remote.host) return
    pending.reject(new DialRejectedError(`${remote.host}:${remote.port} refused the connection: ${reason === RejectReason.NOT_LISTENING ? 'not listening' : 'overloaded'}`))
  }

  private send (message: ControlMessage, remote: UdpEndpoint): void {
    this.socket.trySend(encodeControlMessage(message), remote.port, remote.host)
  }
}
