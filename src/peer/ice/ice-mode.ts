import type { Libp2p, Logger, PeerId, Transport } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { PeerConfig } from '../../config/index.js'
import type { PeerEvent } from '../events.js'
import { IceConnector } from './ice-connector.js'
import { IceServerPool } from './ice-server-pool.js'
import type { CandidateSource, IceServersResponse, RankedServer } from './ice-server-pool.js'
import { handleNatTypeQueries } from './nat-type-protocol.js'
import type { NatType } from './strategy.js'
import { StrategyHistory } from './strategy-history.js'
import type { IceStrategy, StrategyRecord } from './strategy-history.js'
import { iceWebRTC } from './webrtc-transport.js'
import type { WebRTCTransportComponents } from '@libp2p/webrtc'

export interface IceModeInit {
  config: PeerConfig
  log: Logger
  /** asks a gateway for its ICE servers (the gateway's `/natmesh/ice-servers/1.0.0` protocol) */
  fetchIceServers?: (node: Libp2p, gateway: PeerId, signal: AbortSignal) => Promise<IceServersResponse>
  /** reorders or drops TURN servers: the TURN health monitor's preference */
  rankTurn?: (servers: RankedServer[]) => RankedServer[]
}

export interface IceModeAttach {
  node: Libp2p
  emit: (event: PeerEvent) => void
  isGateway: (peer: PeerId) => boolean
  gatewayAddresses: (gateway: PeerId) => Multiaddr[]
  /** asks NAT type detection for a fresh report when the last one is stale */
  refreshNatType?: () => void
}

/** what the status API shows of ice mode; server credentials are left out */
export interface IceStatus {
  natType: NatType
  servers: Array<{ url: string, source: CandidateSource, gateway?: string }>
  strategies: Record<IceStrategy, StrategyRecord>
}

/**
 * Everything `--mode ice` adds to a peer: the WebRTC transport configured from the gateways' ICE servers,
 * the NAT type protocol, the strategy history and the connector that upgrades relayed connections.
 */
export class IceMode {
  private readonly init: IceModeInit
  private readonly pool: IceServerPool
  private readonly history: StrategyHistory
  private attached?: IceModeAttach
  private connector?: IceConnector
  private natType: NatType

  constructor (init: IceModeInit) {
    this.init = init
    this.natType = init.config.ice.natType === 'auto' ? 'unknown' : init.config.ice.natType
    const fetchIceServers = init.fetchIceServers
    this.pool = new IceServerPool({
      fetch: fetchIceServers == null ? undefined : async (gateway, signal) => fetchIceServers(this.node(), gateway, signal),
      staticServers: init.config.ice.servers.map(server => typeof server === 'string' ? { urls: server } : server),
      gatewayAddresses: gateway => this.attached?.gatewayAddresses(gateway) ?? [],
      rankTurn: init.rankTurn,
      log: init.log
    })
    this.history = new StrategyHistory({
      file: init.config.ice.historyFile,
      warn: message => { this.attached?.emit({ event: 'warning', message }) }
    })
  }

  transport (): (components: WebRTCTransportComponents) => Transport {
    return iceWebRTC(this.pool)
  }

  attach (attach: IceModeAttach): void {
    this.attached = attach
    this.connector = new IceConnector({
      node: attach.node,
      pool: this.pool,
      history: this.history,
      localNatType: () => {
        attach.refreshNatType?.()
        return this.natType
      },
      isGateway: attach.isGateway,
      log: this.init.log,
      emit: attach.emit
    })
  }

  async start (): Promise<void> {
    await this.history.load()
    await handleNatTypeQueries(this.node(), () => this.natType, this.init.log)
    this.connector?.start()
  }

  stop (): void {
    this.connector?.stop()
    this.pool.stop()
  }

  /** from NAT type detection (ignored when the config names the NAT type): what the strategy is chosen with */
  detectedNatType (natType: NatType): void {
    if (this.init.config.ice.natType === 'auto') this.natType = natType
  }

  /** a gateway was reached: fetch its ICE servers and keep them fresh */
  gatewayReached (gateway: PeerId): void {
    this.pool.watch(gateway)
  }

  status (): IceStatus {
    return {
      natType: this.natType,
      servers: this.pool.ranked().map(({ url, source, gateway }) => ({ url, source, ...(gateway != null ? { gateway } : {}) })),
      strategies: this.history.all()
    }
  }

  private node (): Libp2p {
    if (this.attached == null) throw new Error('ice mode is not attached to a peer yet')
    return this.attached.node
  }
}
