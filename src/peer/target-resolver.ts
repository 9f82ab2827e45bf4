import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { relayAddress } from '../core/relay-address.js'
import type { LookupOptions, StationLookup } from '../stations/lookup.js'

/** `station:<name>` targets are looked up in the gateways' DHT */
export const STATION_PREFIX = 'station:'

export interface TargetResolverInit {
  /** our gateways, each with its open connection (if any) */
  gateways: () => Array<{ gateway: PeerId, connection?: Connection }>
  lookup: (name: string, options: LookupOptions) => Promise<StationLookup>
}

/**
 * Turns what a user names as a target (a multiaddr, a peer id reached through our gateways, or `station:<name>`)
 * into the addresses to dial.
 */
export class TargetResolver {
  private readonly init: TargetResolverInit
  /** peers we reached by station name: a resumed session looks them up again, their gateways may have changed */
  private readonly stationOf = new Map<string, string>()

  constructor (init: TargetResolverInit) {
    this.init = init
  }

  async addresses (target: string | Multiaddr, signal: AbortSignal): Promise<Multiaddr[]> {
    if (typeof target !== 'string') return [target]
    if (target.startsWith('/')) return [multiaddr(target)]
    if (target.startsWith(STATION_PREFIX)) return this.stationAddresses(target.slice(STATION_PREFIX.length), signal)
    let peer: PeerId
    try {
      peer = peerIdFromString(target)
    } catch {
      throw new Error(`"${target}" is neither a multiaddr nor a peer id`)
    }
    const viaGateways = this.init.gateways().flatMap(({ gateway, connection }) =>
      connection == null ? [] : [relayAddress(connection.remoteAddr, gateway, peer)])
    const station = this.stationOf.get(target)
    const viaStation = station == null ? [] : await this.stationAddresses(station, signal).catch(() => [])
    if (viaGateways.length + viaStation.length === 0) throw new Error(`cannot reach ${target}: not connected to any gateway yet`)
    return [...viaStation, ...viaGateways]
  }

  private async stationAddresses (name: string, signal: AbortSignal): Promise<Multiaddr[]> {
    const { record } = await this.init.lookup(name, { signal })
    if (record == null) throw new Error(`station ${name} not found`)
    if (record.withdrawn) throw new Error(`station ${name} was withdrawn by its owner`)
    if (record.relayAddrs.length === 0) throw new Error(`station ${name} has no gateway at the moment`)
    this.stationOf.set(record.peerId, name)
    return record.relayAddrs.map(address => multiaddr(address))
  }
}
