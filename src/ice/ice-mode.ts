import type { Libp2p, Logger, PeerId, Transport } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { IceEvent } from './events.js'
import { IceConnector } from './ice-connector.js'
import { IceServerPool } from '../ice-servers/pool.js'
import type { CandidateSource, IceServersResponse } from '../ice-servers/pool.js'
import { TurnHealthMonitor } from '../turn/client/health-monitor.js'
import type { TurnServerHealth } from '../turn/client/health-monitor.js'
import { handleNatTypeExchange } from './nat-type-protocol.js'
import { candidatePolicy, chooseStrategy } from './strategy.js'
import type { NatType } from './strategy.js'
import { StrategyHistory } from './strategy-history.js'
import type { IceStrategy, StrategyRecord } from './strategy-history.js'
import { IceCandidatePolicies, iceWebRTC } from './webrtc-transport.js'
import type { WebRTCTransportComponents } from '@libp2p/webrtc'

/** The peer config's `ice` section, as ICE mode reads it */
export interface IceSettings {
  natType: 'auto' | NatType
  /** `stun:host:port`, or RTCIceServer mappings with TURN credentials */
  servers: Array<string | { urls: string | string[], username?: string, credential?: string }>
  historyFile: string
}

export interface IceModeInit {
  config: { ice: IceSettings }
  log: Logger
  /** asks a gateway for its ICE servers (the gateway's `/natmesh/ice-servers/1.0.0` protocol) */
  fetchIceServers?: (node: Libp2p, gateway: PeerId, options: { signal: AbortSignal }) => Promise<IceServersResponse>
}

export interface IceModeAttach {
  node: Libp2p
  emit: (event: IceEvent) => void
  isGateway: (peer: PeerId) => boolean
  gatewayAddresses: (gateway: PeerId) => Multiaddr[]
  /** NAT type detection's report: the cached one while fresh, else a new detection (undefined: detection is off or failed) */
  detectNatType?: () => Promise<NatType | undefined>
}

/** an ICE attempt (and a NAT type answer) waits this long at most for NAT type detection (~2 s at start-up in the lab) */
export const NAT_TYPE_WAIT_MS = 5000

/** what the status API shows of ice mode; server credentials are left out */
export interface IceStatus {
  natType: NatType
  servers: Array<{ url: string, source: CandidateSource, gateway?: string }>
  turnHealth: TurnServerHealth[]
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
  private readonly policies = new IceCandidatePolicies()
  /** watches the TURN servers with real allocations, so attempts prefer the healthy, fast ones */
  private readonly turnMonitor: TurnHealthMonitor
  private attached?: IceModeAttach
  private connector?: IceConnector
  private natType: NatType

  constructor (init: IceModeInit) {
    this.init = init
    this.natType = init.config.ice.natType === 'auto' ? 'unknown' : init.config.ice.natType
    const fetchIceServers = init.fetchIceServers
    this.pool = new IceServerPool({
      fetch: fetchIceServers == null ? undefined : async (gateway, signal) => fetchIceServers(this.node(), gateway, { signal }),
      staticServers: init.config.ice.servers.map(server => typeof server === 'string'
        ? { urls: [server] }
        : { ...server, urls: Array.isArray(server.urls) ? server.urls : [server.urls] }),
      gatewayAddresses: gateway => this.attached?.gatewayAddresses(gateway) ?? [],
      turnHealth: address => this.turnMonitor.health().find(h => h.address === address),
      log: init.log
    })
    this.turnMonitor = new TurnHealthMonitor({
      servers: () => this.pool.ranked().flatMap(s => s.username != null && s.credential != null ? [{ urls: [s.url], username: s.username, credential: s.credential }] : []),
      log: init.log
    })
    this.history = new StrategyHistory({
      file: init.config.ice.historyFile,
      warn: message => { this.attached?.emit({ event: 'warning', message }) }
    })
  }

  transport (): (components: WebRTCTransportComponents) => Transport {
    return iceWebRTC(this.pool, this.policies)
  }

  attach (attach: IceModeAttach): void {
    this.attached = attach
    this.connector = new IceConnector({
      node: attach.node,
      pool: this.pool,
      history: this.history,
      policies: this.policies,
      localNatType: async () => this.currentNatType(),
      isGateway: attach.isGateway,
      log: this.init.log,
      emit: attach.emit
    })
  }

  async start (): Promise<void> {
    await this.history.load()
    await handleNatTypeExchange(this.node(), {
      natType: async () => this.currentNatType(),
      // the dialler picks the same strategy from the same two NAT types; answer its attempt with matching candidates
      onRemote: (peer, remote, own) => {
        const strategy = chooseStrategy(own, remote)
        if (strategy !== 'relay') this.policies.set(peer, candidatePolicy(strategy))
      },
      log: this.init.log
    })
    await this.turnMonitor.start()
    this.connector?.start()
  }

  async stop (): Promise<void> {
    this.connector?.stop()
    await this.turnMonitor.stop()
    this.pool.stop()
  }

  /** from NAT type detection (ignored when the config names the NAT type): what the strategy is chosen with */
  detectedNatType (natType: NatType): void {
    if (this.init.config.ice.natType === 'auto') this.natType = natType
  }

  /** the configured NAT type, or detection's (waiting a little for a detection under way), or the last known */
  private async currentNatType (): Promise<NatType> {
    const detect = this.attached?.detectNatType
    if (this.init.config.ice.natType !== 'auto' || detect == null) return this.natType
    let timer: NodeJS.Timeout | undefined
    const detected = await Promise.race([
      detect().catch(() => undefined),
      new Promise<undefined>(resolve => { timer = setTimeout(() => { resolve(undefined) }, NAT_TYPE_WAIT_MS) })
    ])
    clearTimeout(timer)
    if (detected != null) this.natType = detected
    return this.natType
  }

  /** a gateway was reached: fetch its ICE servers and keep them fresh */
  gatewayReached (gateway: PeerId): void {
    this.pool.watch(gateway)
  }

  status (): IceStatus {
    return {
      natType: this.natType,
      servers: this.pool.ranked().map(({ url, source, gateway }) => ({ url, source, ...(gateway != null ? { gateway } : {}) })),
      turnHealth: this.turnMonitor.health(),
      strategies: this.history.all()
    }
  }

  private node (): Libp2p {
    if (this.attached == null) throw new Error('ice mode is not attached to a peer yet')
    return this.attached.node
  }
}
