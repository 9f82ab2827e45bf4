import { networkInterfaces } from 'node:os'
import { TypedEventEmitter } from 'main-event'
import type { ComponentLogger, Listener, ListenerEvents, Logger, Upgrader } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { UDXStream } from 'udx-native'
import { toUdpEndpoint, toUdxMultiaddr } from './multiaddr.js'
import type { UdpEndpoint } from './multiaddr.js'
import type { LivenessWatch } from './liveness.js'
import type { OverlaySocket } from './overlay-socket.js'
import { toMultiaddrConnection } from './udx-connection.js'
import { upgradesWithNoise } from './noise-first.js'

export interface UdxListenerInit {
  socket: OverlaySocket
  upgrader: Upgrader
  logger: ComponentLogger
  closeTimeoutMs: number
  liveness?: LivenessWatch
}

/** Binds the node's overlay socket and hands every accepted udx stream to libp2p's upgrader. */
export class UdxListener extends TypedEventEmitter<ListenerEvents> implements Listener {
  private readonly init: UdxListenerInit
  private readonly log: Logger
  private readonly shutdown = new AbortController()
  private listeningAddr?: Multiaddr
  private bound?: UdpEndpoint

  constructor (init: UdxListenerInit) {
    super()
    this.init = init
    this.log = init.logger.forComponent('natmesh:udx:listener')
  }

  async listen (ma: Multiaddr): Promise<void> {
    const endpoint = toUdpEndpoint(ma)
    if (endpoint == null) throw new Error(`not a UDP overlay address: ${ma.toString()}`)
    this.bound = this.init.socket.bind(endpoint.host, endpoint.port)
    this.listeningAddr = ma
    this.init.socket.setInboundHandler((stream, remote, firstChunk, noiseFirst) => { this.onStream(stream, remote, firstChunk, noiseFirst) }, upgradesWithNoise(this.init.upgrader, 'inbound'))
    this.safeDispatchEvent('listening')
  }

  getAddrs (): Multiaddr[] {
    if (this.bound == null) return []
    const { host, port, family } = this.bound
    if (host !== '0.0.0.0' && host !== '::') return [toUdxMultiaddr(host, port)]
    // a wildcard bind is reachable on every local address of that family
    return Object.values(networkInterfaces())
      .flatMap(addrs => addrs ?? [])
      .filter(addr => (family === 4 ? addr.family === 'IPv4' : addr.family === 'IPv6') && !addr.address.startsWith('fe80'))
      .map(addr => toUdxMultiaddr(addr.address, port))
  }

  updateAnnounceAddrs (): void {}

  async close (): Promise<void> {
    this.init.socket.setInboundHandler(undefined)
    this.shutdown.abort()
    this.safeDispatchEvent('close')
  }

  private onStream (stream: UDXStream, remote: UdpEndpoint, firstChunk: Uint8Array, noiseFirst: boolean): void {
    const maConn = toMultiaddrConnection({
      stream,
      firstChunk,
      noiseFirst,
      direction: 'inbound',
      remoteAddr: toUdxMultiaddr(remote.host, remote.port),
      localAddr: this.listeningAddr,
      log: this.init.logger.forComponent('natmesh:udx:connection'),
      closeTimeoutMs: this.init.closeTimeoutMs,
      liveness: this.init.liveness
    })
    this.log('inbound connection from %s:%d', remote.host, remote.port)
    this.init.upgrader.upgradeInbound(maConn, { signal: this.shutdown.signal })
      .catch(err => {
        this.log.error('inbound connection from %s:%d failed to upgrade - %e', remote.host, remote.port, err)
        maConn.abort(err)
      })
  }
}
