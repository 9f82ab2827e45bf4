import type { Connection, Libp2p, Logger, PeerId } from '@libp2p/interface'
import type { IceEvent } from './events.js'
import { pingOver } from '../core/ping-path.js'
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
 * opened the relayed connection dials, so the two never race each other; it dials again (an ICE restart) when the
 * WebRTC connection ends while the relayed one lives.
 */

/** an ICE restart first checks that the relayed connection still reaches the peer, within this */
const RESTART_PING_TIMEOUT_MS = 3000
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
    if (this.init.isGateway(peer)) return
    if (!isRelayed(connection.remoteAddr)) {
      connection.addEventListener('close', () => { void this.restart(connection) }, { once: true })
      return
    }
    if (connection.direction === 'inbound') {
      // a remote that dials us through a relay has no WebRTC connection to us (it would use it): ours is on a
      // candidate pair that is gone (its network changed), and the remote's new ICE attempt replaces it
      for (const stale of this.direct(connection)) stale.abort(new Error('the remote reached us through a relay: its end of this WebRTC connection is gone'))
      return
    }
    this.attempt(connection)
  }

  private attempt (relayed: Connection): void {
    const peer = relayed.remotePeer.toString()
    if (this.attempts.has(peer)) return
    this.attempts.add(peer)
    void this.upgrade(relayed).finally(() => { this.attempts.delete(peer) })
  }

  /** the open direct (WebRTC) connections to the peer at the other end of `connection` */
  private direct (connection: Connection): Connection[] {
    return this.init.node.getConnections(connection.remotePeer).filter(conn => conn.status === 'open' && !isRelayed(conn.remoteAddr))
  }

  /**
   * ICE restart: our WebRTC connection to a peer ended (its selected pair failed) while the relayed connection we
   * opened to it lives on. If the relay still carries a ping (the peer did not just stop), ICE runs again over it,
   * gathering afresh, rather than leaving the peer on the relay.
   */
  private async restart (lost: Connection): Promise<void> {
    const relayed = this.init.node.getConnections(lost.remotePeer)
      .find(conn => conn.status === 'open' && isRelayed(conn.remoteAddr) && conn.direction === 'outbound')
    if (!this.running || relayed == null || this.direct(lost).length > 0 || this.attempts.has(lost.remotePeer.toString())) return
    try {
      await pingOver(relayed, RESTART_PING_TIMEOUT_MS)
    } catch {
      return
    }
    if (this.running && relayed.status === 'open' && this.direct(lost).length === 0) this.attempt(relayed)
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
