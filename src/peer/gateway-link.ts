import { RELAY_V2_HOP_CODEC } from '@libp2p/circuit-relay-v2'
import { pbStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, Libp2p, Logger, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { isUdxMultiaddr } from '../transport/index.js'
import type { OverlayTransport, PeerEvent } from './events.js'
import { HopMessage, Status } from './pb/circuit-hop.js'
import { isRelayed, relayAddress } from './relay-address.js'

export interface GatewayLinkInit {
  gateway: PeerId
  /** every known address of the gateway; UDP overlay ones are tried first, TCP ones are the fallback */
  addresses: Multiaddr[]
  /** how long to wait for one address before trying the next (UDP blocked → TCP) */
  dialTimeoutMs: number
  reconnect: { initialDelayMs: number, maxDelayMs: number }
  /** renew a reservation this long before it expires */
  refreshBeforeExpiryMs: number
  node: Libp2p
  log: Logger
  emit: (event: PeerEvent) => void
}

/**
 * Keeps one gateway usable: a connection (UDP overlay first, TCP when UDP is blocked), a relay reservation
 * renewed before it expires, and reconnection with exponential backoff when the gateway goes away.
 */
export class GatewayLink {
  private readonly init: GatewayLinkInit
  private readonly log: Logger
  private connection?: Connection
  private timer?: NodeJS.Timeout
  private failures = 0
  private stopped = true
  private relayAddrs: Multiaddr[] = []
  private expiresAt = 0

  constructor (init: GatewayLinkInit) {
    this.init = init
    this.log = init.log
  }

  get gateway (): PeerId {
    return this.init.gateway
  }

  /** the gateway's configured addresses */
  get addresses (): Multiaddr[] {
    return this.init.addresses
  }

  /** addresses other peers dial to reach us through this gateway; empty while there is no reservation */
  get relayAddresses (): Multiaddr[] {
    return this.relayAddrs
  }

  /** the connection the reservation lives on; undefined while there is none */
  get activeConnection (): Connection | undefined {
    return this.connection
  }

  get transport (): OverlayTransport | undefined {
    if (this.connection == null) return undefined
    return isUdxMultiaddr(this.connection.remoteAddr) ? 'udx' : 'tcp'
  }

  start (): void {
    this.stopped = false
    this.schedule(0)
  }

  stop (): void {
    this.stopped = true
    clearTimeout(this.timer)
  }

  /** The connection's own close event carries why it closed (e.g. its path fell silent); libp2p's does not. */
  private adopt (connection: Connection): void {
    if (connection === this.connection) return
    this.connection = connection
    connection.addEventListener('close', (evt) => { this.onConnectionClose(connection, evt.error) }, { once: true })
  }

  private onConnectionClose (closed: Connection, error?: Error): void {
    if (this.stopped || closed !== this.connection) return
    this.connection = undefined
    this.relayAddrs = []
    this.expiresAt = 0
    const retryInMs = this.backoff()
    const reason = error == null ? 'connection closed' : `connection closed: ${error.message}`
    this.init.emit({ event: 'gateway-lost', gateway: this.init.gateway.toString(), reason, retryInMs })
    this.schedule(retryInMs)
  }

  private schedule (delayMs: number): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => { void this.connectAndReserve() }, delayMs)
  }

  private backoff (): number {
    const { initialDelayMs, maxDelayMs } = this.init.reconnect
    const base = Math.min(initialDelayMs * 2 ** this.failures, maxDelayMs)
    this.failures++
    // jitter, so peers of a restarted gateway don't all come back in the same instant
    return Math.round(base / 2 + Math.random() * base / 2)
  }

  private async connectAndReserve (): Promise<void> {
    if (this.stopped) return
    try {
      const connection = this.connection?.status === 'open' ? this.connection : await this.connect()
      this.adopt(connection)
      const expiresAt = await this.reserve(connection)
      this.expiresAt = expiresAt
      this.failures = 0
      this.schedule(refreshDelay(expiresAt - Date.now(), this.init.refreshBeforeExpiryMs))
    } catch (err) {
      // relay addresses of a reservation the gateway has dropped would send other peers nowhere
      if (Date.now() >= this.expiresAt) this.relayAddrs = []
      const retryInMs = this.backoff()
      const reason = err instanceof Error ? err.message : String(err)
      this.log('gateway %p unavailable - %s; retrying in %d ms', this.init.gateway, reason, retryInMs)
      this.init.emit({ event: 'gateway-lost', gateway: this.init.gateway.toString(), reason, retryInMs })
      this.schedule(retryInMs)
    }
  }

  private async connect (): Promise<Connection> {
    const connection = await dialGateway(this.init.node, this.init.gateway, this.init.addresses, { timeoutMs: this.init.dialTimeoutMs, force: true })
    const transport = isUdxMultiaddr(connection.remoteAddr) ? 'udx' : 'tcp'
    this.init.emit({ event: 'gateway-connected', gateway: this.init.gateway.toString(), transport, remoteAddr: connection.remoteAddr.toString() })
    return connection
  }

  /** Sends a circuit v2 RESERVE; returns when the reservation expires (ms since epoch). */
  private async reserve (connection: Connection): Promise<number> {
    const signal = AbortSignal.timeout(this.init.dialTimeoutMs * 2)
    const stream = await connection.newStream(RELAY_V2_HOP_CODEC, { signal })
    try {
      const hop = pbStream(stream, { maxDataLength: 16 * 1024 }).pb(HopMessage)
      await hop.write({ type: HopMessage.Type.RESERVE }, { signal })
      const response = await hop.read({ signal })
      if (response.status !== Status.OK) throw new Error(`gateway refused the reservation: ${response.status ?? 'no status'}`)
      const expire = Number(response.reservation?.expire ?? 0n) * 1000
      if (!(expire > Date.now())) throw new Error('gateway sent a reservation that has already expired')
      const gatewayAddrs = (response.reservation?.addrs ?? []).flatMap(bytes => {
        try { return [multiaddr(bytes)] } catch { return [] }
      })
      const gw = this.init.gateway.toString()
      const bases = gatewayAddrs.length > 0 ? gatewayAddrs : [connection.remoteAddr]
      this.relayAddrs = bases
        .filter(ma => !isRelayed(ma))
        .map(ma => relayAddress(ma, this.init.gateway, this.init.node.peerId))
      await stream.close({ signal }).catch(() => {})
      this.init.emit({ event: 'reservation', gateway: gw, relayAddrs: this.relayAddrs.map(ma => ma.toString()) })
      return expire
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }
}

/**
 * Dials a gateway over its UDP overlay addresses first and TCP ones after (UDP may be blocked), each for at most
 * `timeoutMs`. `force` opens a fresh connection even when one exists (which may be a dead one after a restart).
 */
export async function dialGateway (node: Libp2p, gateway: PeerId, addresses: Multiaddr[], options: { timeoutMs: number, force: boolean }): Promise<Connection> {
  const ordered = [...addresses.filter(isUdxMultiaddr), ...addresses.filter(ma => !isUdxMultiaddr(ma))]
  const errors: string[] = []
  for (const address of ordered) {
    try {
      return await node.dial(address, { signal: AbortSignal.timeout(options.timeoutMs), force: options.force })
    } catch (err) {
      errors.push(`${address.toString()}: ${err instanceof Error ? err.message : String(err)}`)
    }
  }
  throw new Error(`could not reach gateway ${gateway.toString()} (${errors.join('; ')})`)
}

/** Renew `refreshBeforeExpiryMs` ahead of expiry, or halfway through a reservation shorter than that. */
export function refreshDelay (remainingMs: number, refreshBeforeExpiryMs: number): number {
  return remainingMs > 2 * refreshBeforeExpiryMs ? remainingMs - refreshBeforeExpiryMs : Math.max(remainingMs / 2, 1000)
}
