import type { Connection, IdentifyResult, Libp2p, PeerId } from '@libp2p/interface'
import type { Path } from '../core/path.js'
import { isRelayed } from '../core/relay-address.js'
import type { IceEvent } from '../ice/events.js'
import { isWebRtc, selectedPair } from '../ice/selected-pair.js'
import { NATMESH_DHT_PROTOCOL } from '../stations/dht.js'
import type { ConnectionStats } from './connection-stats.js'

export type PeerPathEvent =
  | { event: 'connection', peer: string, path: Path, remoteAddr: string, direction: 'inbound' | 'outbound' }
  | { event: 'connection-closed', peer: string, path: Path, remoteAddr: string }
  | Extract<IceEvent, { event: 'ice-path' }>

export interface PeerPathsInit {
  node: Libp2p
  /** our gateways (configured or discovered): their connections are no peer paths */
  isGateway: (peer: PeerId) => boolean
  stats: ConnectionStats
  emit: (event: PeerPathEvent) => void
}

/** how long a direct connection's identify is waited for before it is taken for a peer path */
const IDENTIFY_WAIT_MS = 5000

export function pathOf (connection: Connection): Path {
  return isRelayed(connection.remoteAddr) ? 'relay' : 'direct'
}

/**
 * Which of the node's connections are paths to other peers (not to gateways), reported as `connection` and
 * `connection-closed` and counted in the connection stats; WebRTC ones also with the candidate pair ICE chose.
 */
export class PeerPaths {
  private readonly init: PeerPathsInit
  /** gateways other than ours (a station's, ones the DHT queried): their connections are no peer paths */
  private readonly otherGateways = new Set<string>()
  /** the connections reported as peer paths, so that only those get `connection-closed` */
  private readonly reported = new Set<string>()
  /** WebRTC connections' candidate pair reports under way: a caller waiting for the direct path gets both at once */
  private readonly icePaths = new Map<string, Promise<void>>()

  constructor (init: PeerPathsInit) {
    this.init = init
  }

  opened (connection: Connection): void {
    const { node } = this.init
    const peer = connection.remotePeer
    if (this.isInfrastructure(peer)) return
    const upgrade = isRelayed(connection.remoteAddr) || node.getConnections(peer).some(conn => conn.id !== connection.id && isRelayed(conn.remoteAddr))
    if (upgrade) {
      this.report(connection)
      return
    }
    // a direct connection no relayed one came before may be a gateway's (a DHT query, a station's gateway):
    // gateways are the DHT's servers, so identify tells
    void this.speaksDht(connection).then((gateway) => {
      if (gateway) this.otherGateways.add(peer.toString())
      else if (connection.status === 'open') this.report(connection)
    })
  }

  /** peer paths open now */
  get count (): number {
    return this.reported.size
  }

  closed (connection: Connection): void {
    const peer = connection.remotePeer
    this.icePaths.delete(connection.id)
    if (this.isInfrastructure(peer) || !this.reported.delete(connection.id)) return
    this.init.stats.closed(peer.toString(), connection.id)
    this.init.emit({ event: 'connection-closed', peer: peer.toString(), path: pathOf(connection), remoteAddr: connection.remoteAddr.toString() })
  }

  /**
   * Resolves with the direct connection to `peer` as soon as there is one (a WebRTC one once its `ice-path` is
   * reported, so a one-shot dial that exits next has said which candidate pair carried it), or undefined after
   * `timeoutMs`.
   */
  async waitForDirect (peer: PeerId, timeoutMs: number): Promise<Connection | undefined> {
    const connection = await this.nextDirect(peer, timeoutMs)
    if (connection != null) await this.icePaths.get(connection.id)
    return connection
  }

  private async nextDirect (peer: PeerId, timeoutMs: number): Promise<Connection | undefined> {
    const { node } = this.init
    const isDirect = (conn: Connection): boolean => conn.status === 'open' && !isRelayed(conn.remoteAddr) && conn.remotePeer.equals(peer)
    const existing = node.getConnections(peer).find(isDirect)
    if (existing != null) return existing
    return new Promise((resolve) => {
      const done = (connection?: Connection): void => {
        clearTimeout(timer)
        node.removeEventListener('connection:open', onOpen)
        resolve(connection)
      }
      const onOpen = (evt: CustomEvent<Connection>): void => { if (isDirect(evt.detail)) done(evt.detail) }
      const timer = setTimeout(() => { done() }, timeoutMs)
      node.addEventListener('connection:open', onOpen)
    })
  }

  private isInfrastructure (peer: PeerId): boolean {
    return this.init.isGateway(peer) || this.otherGateways.has(peer.toString())
  }

  private report (connection: Connection): void {
    const peer = connection.remotePeer
    const path = pathOf(connection)
    const remoteAddr = connection.remoteAddr.toString()
    this.reported.add(connection.id)
    this.init.stats.opened(peer.toString(), connection.id, path, remoteAddr)
    this.init.emit({ event: 'connection', peer: peer.toString(), path, remoteAddr, direction: connection.direction })
    if (isWebRtc(connection.remoteAddr)) this.icePaths.set(connection.id, this.reportIcePath(connection))
  }

  /** Whether the remote serves natmesh's DHT, by identify on this connection (false when identify does not come) */
  private async speaksDht (connection: Connection): Promise<boolean> {
    const { node } = this.init
    return new Promise((resolve) => {
      const done = (result: boolean): void => {
        clearTimeout(timer)
        node.removeEventListener('peer:identify', onIdentify)
        node.removeEventListener('connection:close', onClose)
        resolve(result)
      }
      const onIdentify = (evt: CustomEvent<IdentifyResult>): void => {
        if (evt.detail.connection.id === connection.id) done(evt.detail.protocols.includes(NATMESH_DHT_PROTOCOL))
      }
      const onClose = (evt: CustomEvent<Connection>): void => { if (evt.detail.id === connection.id) done(false) }
      const timer = setTimeout(() => { done(false) }, IDENTIFY_WAIT_MS)
      node.addEventListener('peer:identify', onIdentify)
      node.addEventListener('connection:close', onClose)
    })
  }

  private async reportIcePath (connection: Connection): Promise<void> {
    const pair = await selectedPair(connection).catch(() => undefined)
    if (pair == null) return
    const peer = connection.remotePeer.toString()
    this.init.stats.candidatePair(peer, connection.id, pair.type)
    const where = (c: typeof pair.local): string => `${c.type} ${c.address ?? '?'}:${c.port ?? '?'}`
    this.init.emit({ event: 'ice-path', peer, candidateType: pair.type, local: where(pair.local), remote: where(pair.remote) })
  }
}
