import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayServer } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { defaultLogger } from '@libp2p/logger'
import { ping } from '@libp2p/ping'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import { register } from 'prom-client'
import type { Libp2p, PrivateKey } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'
import type { CircuitRelayService } from '@libp2p/circuit-relay-v2'
import type { Registry } from 'prom-client'
import type { GatewayConfig } from '../config/index.js'
import type { Logger } from '../logging.js'
import { udxOverlay } from '../transport/index.js'
import { ObservedAddressBook, observeConnections } from './address-book.js'
import { startHttpApi } from './http-api.js'
import type { HttpApi } from './http-api.js'
import { GatewayMetrics } from './metrics.js'
import { handlePunchReports } from './punch-reports.js'
import { allowUnlimitedCircuits } from './relay-allowlist.js'

const HOP_PROTOCOL = '/libp2p/circuit/relay/0.2.0/hop'

type GatewayServices = { relay: CircuitRelayService, identify: unknown, ping: unknown, registrar?: never }

export interface CreateGatewayOptions {
  privateKey: PrivateKey
  logger: Logger
  /** where /metrics reads from; libp2p's own metrics land in the same registry */
  registry?: Registry
}

/**
 * A gateway: a public libp2p node that relays (circuit v2), observes every peer's public address, takes
 * hole-punch reports and serves its state over HTTP (JSON API, /healthz, Prometheus /metrics).
 */
export class Gateway {
  readonly node: Libp2p<GatewayServices>
  readonly addressBook = new ObservedAddressBook()
  private readonly config: GatewayConfig
  private readonly options: CreateGatewayOptions
  private readonly metrics: GatewayMetrics
  private api?: HttpApi
  private stopObserving?: () => void
  private stopReports?: () => Promise<void>

  constructor (node: Libp2p<GatewayServices>, config: GatewayConfig, options: CreateGatewayOptions) {
    this.node = node
    this.config = config
    this.options = options
    this.metrics = new GatewayMetrics({
      registry: options.registry ?? register,
      reservations: () => node.services.relay.reservations.size,
      activeCircuits: () => node.getConnections()
        .flatMap(conn => conn.streams)
        .filter(stream => stream.protocol === HOP_PROTOCOL && stream.direction === 'inbound' && stream.status === 'open')
        .length,
      connectedPeers: () => countByTransport(node)
    })
  }

  get apiUrl (): string | undefined {
    return this.api?.url
  }

  async start (): Promise<void> {
    await this.node.start()
    this.stopObserving = observeConnections(this.node, this.addressBook)
    const registrar = (this.node as unknown as { components: { registrar: Registrar } }).components.registrar
    this.stopReports = await handlePunchReports({
      registrar,
      log: this.node.logger.forComponent('natmesh:punch-reports'),
      onReport: (report) => { this.metrics.holePunchReported(report.outcome, report.transport) }
    })
    this.api = await startHttpApi({
      host: this.config.api.host,
      port: this.config.api.port,
      addressBook: this.addressBook,
      registry: this.options.registry ?? register,
      info: () => ({ peerId: this.node.peerId.toString(), addresses: this.node.getMultiaddrs().map(String) }),
      logger: this.options.logger.child({ component: 'http-api' })
    })
  }

  async stop (): Promise<void> {
    await this.api?.close()
    this.stopObserving?.()
    await this.stopReports?.()
    await this.node.stop()
  }
}

function countByTransport (node: Libp2p): Record<'udx' | 'tcp', number> {
  const counts = { udx: 0, tcp: 0 }
  const seen = new Set<string>()
  for (const conn of node.getConnections()) {
    const key = `${conn.remotePeer.toString()}/${conn.remoteAddr.toString().includes('/udx') ? 'udx' : 'tcp'}`
    if (seen.has(key) || conn.remoteAddr.toString().includes('/p2p-circuit')) continue
    seen.add(key)
    counts[conn.remoteAddr.toString().includes('/udx') ? 'udx' : 'tcp']++
  }
  return counts
}

export async function createGateway (config: GatewayConfig, options: CreateGatewayOptions): Promise<Gateway> {
  const announce = config.announce.flatMap(ip => {
    const family = ip.includes(':') ? 'ip6' : 'ip4'
    return [`/${family}/${ip}/udp/${config.udpPort}/udx`, `/${family}/${ip}/tcp/${config.tcpPort}`]
  })
  const node = await createLibp2p({
    privateKey: options.privateKey,
    start: false,
    logger: defaultLogger(),
    addresses: {
      listen: [`/ip4/${config.host}/udp/${config.udpPort}/udx`, `/ip4/${config.host}/tcp/${config.tcpPort}`],
      // a gateway knows its public address from config; it must not wait for AutoNAT to advertise it
      ...(announce.length > 0 ? { announce } : {})
    },
    transports: [udxOverlay(), tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    connectionManager: { maxConnections: Math.max(config.relay.maxReservations * 2, 300) },
    metrics: prometheusMetrics({ registry: options.registry ?? register, collectDefaultMetrics: false }),
    services: {
      identify: identify(),
      ping: ping(),
      relay: circuitRelayServer({
        maxInboundHopStreams: config.relay.maxCircuitsPerPeer,
        reservations: {
          maxReservations: config.relay.maxReservations,
          reservationTtl: config.relay.reservationTtlMs,
          defaultDurationLimit: config.relay.circuitDurationMs,
          defaultDataLimit: BigInt(config.relay.circuitDataBytes)
        }
      })
    }
  }) as Libp2p<GatewayServices>
  allowUnlimitedCircuits(node.services.relay, config.relay.allowlist)
  return new Gateway(node, config, options)
}
