import type { Connection, Libp2p, Logger, PeerId } from '@libp2p/interface'
import type { IceEvent } from './events.js'
import { isRelayed, splitRelayAddress, webRtcAddress } from '../core/relay-address.js'
import type { IceServerPool } from '../ice-servers/pool.js'
import { exchangeNatTypes } from './nat-type-protocol.js'
import { selectedPair } from './selected-pair.js'
import { candidatePolicy, chooseStrategy } from './strategy.js'
import type { NatType } from './strategy.js'
import type { StrategyHistory } from './strategy-history.js'
import type { IceCandidatePolicies } from './webrtc-transport.js'

export interface IceConnectorInit {
  node: Libp2p
  pool: IceServerPool
  history: StrategyHistory
  /** where the policy of this attempt is left for the WebRTC transport */
  policies: IceCandidatePolicies
  /** this peer's NAT type (may wait for a detection under way) */
  localNatType: () => Promise<NatType>
  isGateway: (peer: PeerId) => boolean
  log: Logger
  emit: (event: IceEvent) => void
}

/**
 * ICE mode's upgrade: when this peer opens a relayed connection to another peer, it asks the other side's NAT
 * type over it, picks a strategy for the pair, and dials the peer by WebRTC through the same gateway (signalling
 * on the relayed connection) with that strategy's candidate policy and adaptive timeout. The relayed connection
 * stays as the fallback; sessions move onto the WebRTC one like onto a hole-punched one. Only the side that
 * opened the relayed connection dials, so the two never race each other.
 */
export class IceConnector {
  private readonly init: IceConnectorInit
  /** peers with an attempt under way: one at a time each */
  private readonly attempts = new Set<string>()
  private running = false

  constructor (init: IceConnectorInit) {
    this.init = init
  }

  start (): void {
    this.running = true
    this.init.node.addEventListener('connection:open', this.onOpen)
  }

  stop (): void {
    this.running = false
    this.init.node.removeEventListener('connection:open', this.onOpen)
  }

  private readonly onOpen = (evt: CustomEvent<Connection>): void => {
    const connection = evt.detail
    const peer = connection.remotePeer
    if (!isRelayed(connection.remoteAddr) || connection.direction !== 'outbound' || this.init.isGateway(peer)) return
    if (this.attempts.has(peer.toString())) return
    this.attempts.add(peer.toString())
    void this.upgrade(connection).finally(() => { this.attempts.delete(peer.toString()) })
  }

  private async upgrade (relayed: Connection): Promise<void> {
    const peer = relayed.remotePeer.toString()
    const localNat = await this.init.localNatType()
    const remoteNat = await exchangeNatTypes(relayed, localNat, this.init.log)
    const strategy = chooseStrategy(localNat, remoteNat)
    const base = { event: 'ice' as const, peer, strategy, localNat, remoteNat }
    if (!this.running) return
    if (strategy === 'relay') {
      this.init.emit({ ...base, outcome: 'skipped', reason: 'UDP is blocked on one side: ICE needs UDP, the libp2p relay carries the data' })
      return
    }
    const policy = candidatePolicy(strategy)
    if (!policy.stun && !this.init.pool.hasTurn()) {
      this.init.emit({ ...base, outcome: 'skipped', reason: 'both NATs are symmetric and no TURN server is known: the libp2p relay carries the data' })
      return
    }
    const target = splitRelayAddress(webRtcAddress(relayed.remoteAddr))?.circuit
    if (target == null) {
      this.init.emit({ ...base, outcome: 'skipped', reason: `cannot signal over ${relayed.remoteAddr.toString()}` })
      return
    }
    const timeoutMs = this.init.history.timeoutMs(strategy)
    const started = Date.now()
    let outcome: 'success' | 'failure'
    try {
      this.init.policies.set(relayed.remotePeer, policy)
      const connection = await this.init.node.dial(target, { signal: AbortSignal.timeout(timeoutMs), force: true })
      const negotiationMs = Date.now() - started
      const pair = await selectedPair(connection).catch(() => undefined)
      outcome = 'success'
      this.init.emit({
        ...base,
        outcome,
        timeoutMs,
        negotiationMs,
        msSinceRelay: Date.now() - relayed.timeline.open,
        remoteAddr: connection.remoteAddr.toString(),
        ...(pair != null ? { candidateType: pair.type } : {})
      })
    } catch (err) {
      outcome = 'failure'
      const reason = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
      this.init.log('ICE to %s failed after %d ms - %s', peer, Date.now() - started, reason)
      this.init.emit({ ...base, outcome, timeoutMs, reason })
    }
    await this.init.history.record(strategy, outcome === 'success').catch((err: Error) => {
      this.init.emit({ event: 'warning', message: `could not save the ICE strategy history: ${err.message}` })
    })
  }
}
