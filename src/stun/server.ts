import { createSocket } from 'node:dgram'
import type { RemoteInfo, Socket } from 'node:dgram'
import type { Startable } from '@libp2p/interface'
import type { Logger } from '../core/logging.js'
import { bindingResponse, changeRequestRefused, parseBindingRequest } from './codec.js'
import type { Endpoint, ParsedRequest } from './codec.js'
import { TokenBuckets } from '../core/token-buckets.js'

export interface StunServerInit {
  /** IP the primary sockets bind to (the gateway's listen host) */
  host: string
  /** 0 = ephemeral (tests) */
  port: number
  /** the second port, for RFC 5780 behaviour tests; 0 = ephemeral */
  otherPort: number
  /** a second IP of this host: CHANGE-REQUEST "change IP" is answered from it */
  alternateAddress?: string
  /** the public IP of the primary sockets, for OTHER-ADDRESS and RESPONSE-ORIGIN when `host` is a wildcard */
  publicAddress?: string
  /** per source IP; 0 turns the limit off */
  ratePerSecond: number
  burst: number
  logger: Logger
}

export interface StunServerStats {
  /** Binding requests answered (a refused CHANGE-REQUEST included) */
  requests: number
  /** requests dropped by the per-source rate limit */
  rateLimited: number
  /** datagrams that were not a well-formed Binding request, ignored */
  malformed: number
}

/** one socket per (address, port) pair: [primary|alternate][port|otherPort] */
type Slot = readonly [ipIndex: 0 | 1, portIndex: 0 | 1]

const WILDCARDS = new Set(['0.0.0.0', '::'])

/**
 * The gateway's STUN server: RFC 8489 Binding on two ports (and, with an alternate IP, on two addresses), with the
 * RFC 5780 attributes a client needs to discover its NAT's mapping and filtering behaviour. Unknown or malformed
 * datagrams are counted and ignored; each source IP is rate limited by a token bucket.
 */
export class StunServer implements Startable {
  private readonly init: StunServerInit
  private readonly log: Logger
  private readonly limiter: TokenBuckets
  private readonly counts: StunServerStats = { requests: 0, rateLimited: 0, malformed: 0 }
  private sockets: Socket[][] = []
  private ports: [number, number] = [0, 0]

  constructor (init: StunServerInit) {
    this.init = init
    this.log = init.logger
    this.limiter = new TokenBuckets({ ratePerSecond: init.ratePerSecond, burst: init.burst })
  }

  async start (): Promise<void> {
    const ips = [this.init.host, ...(this.init.alternateAddress != null ? [this.init.alternateAddress] : [])]
    try {
      const primary = [await this.bind([0, 0], this.init.port), await this.bind([0, 1], this.init.otherPort)]
      this.sockets = [primary]
      this.ports = [primary[0]?.address().port ?? 0, primary[1]?.address().port ?? 0]
      if (ips.length > 1) {
        // the alternate address serves the same two port numbers, so "change IP" keeps the port and vice versa
        this.sockets.push([await this.bind([1, 0], this.ports[0]), await this.bind([1, 1], this.ports[1])])
      }
    } catch (err) {
      await this.stop()
      throw err
    }
    this.log.info({ addresses: this.addresses().map(e => `${e.address}:${e.port}`) }, 'STUN server listening')
  }

  async stop (): Promise<void> {
    const sockets = this.sockets.flat()
    this.sockets = []
    await Promise.all(sockets.map(async socket => { await new Promise<void>(resolve => { socket.close(() => { resolve() }) }) }))
  }

  /** every address:port the server answers on: primary port, other port, then the alternate IP's two */
  addresses (): Endpoint[] {
    return this.sockets.flatMap((row, ipIndex) => row.map((_, portIndex) => ({ address: this.ipOf(ipIndex), port: this.ports[portIndex] ?? 0 })))
  }

  stats (): StunServerStats {
    return { ...this.counts }
  }

  private async bind (slot: Slot, port: number): Promise<Socket> {
    const address = slot[0] === 0 ? this.init.host : this.init.alternateAddress as string
    const socket = createSocket({ type: address.includes(':') ? 'udp6' : 'udp4', reuseAddr: this.init.alternateAddress != null })
    socket.on('message', (datagram, rinfo) => { this.onDatagram(slot, datagram, rinfo) })
    socket.on('error', (err) => { this.log.warn({ err }, 'STUN socket error') })
    await new Promise<void>((resolve, reject) => {
      const fail = (err: NodeJS.ErrnoException): void => {
        socket.close()
        reject(new Error(`STUN server cannot listen on ${address}:${port} (${err.code ?? err.message}): free the port, or set stun.port/stun.otherPort or --no-stun`))
      }
      socket.once('error', fail)
      socket.bind(port, address, () => {
        socket.off('error', fail)
        resolve()
      })
    })
    return socket
  }

  private onDatagram (slot: Slot, datagram: Buffer, rinfo: RemoteInfo): void {
    try {
      const request = parseBindingRequest(datagram)
      if (request == null) {
        this.counts.malformed++
        return
      }
      if (!this.limiter.take(rinfo.address)) {
        this.counts.rateLimited++
        return
      }
      this.answer(slot, request, { address: rinfo.address, port: rinfo.port })
    } catch (err) {
      // nothing a datagram contains may take the gateway down
      this.counts.malformed++
      this.log.debug({ err }, 'STUN datagram dropped')
    }
  }

  private answer (slot: Slot, request: ParsedRequest, client: Endpoint): void {
    const { transactionId, change } = request
    const [ipIndex, portIndex] = slot
    this.counts.requests++
    if (change.ip && this.sockets.length < 2) {
      this.send(this.sockets[ipIndex]?.[portIndex], changeRequestRefused(transactionId), client)
      return
    }
    const fromIp = change.ip ? 1 - ipIndex : ipIndex
    const fromPort = change.port ? 1 - portIndex : portIndex
    const hasOtherIp = this.sockets.length > 1
    const response = bindingResponse({
      transactionId,
      mapped: client,
      origin: this.publicEndpoint(fromIp, fromPort),
      // OTHER-ADDRESS: the alternate IP when there is one, else this IP, on the port the request did not reach
      other: this.publicEndpoint(hasOtherIp ? 1 - ipIndex : ipIndex, 1 - portIndex),
      fingerprint: request.fingerprint
    })
    this.send(this.sockets[fromIp]?.[fromPort], response, client)
  }

  private send (socket: Socket | undefined, datagram: Buffer, to: Endpoint): void {
    socket?.send(datagram, to.port, to.address, (err) => {
      if (err != null) this.log.debug({ err }, 'STUN response not sent')
    })
  }

  /** the address clients reach a socket on; undefined when the server does not know its public IP */
  private publicEndpoint (ipIndex: number, portIndex: number): Endpoint | undefined {
    const address = this.ipOf(ipIndex)
    return WILDCARDS.has(address) ? undefined : { address, port: this.ports[portIndex] ?? 0 }
  }

  private ipOf (ipIndex: number): string {
    if (ipIndex === 1) return this.init.alternateAddress as string
    return WILDCARDS.has(this.init.host) ? this.init.publicAddress ?? this.init.host : this.init.host
  }
}
