import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { NatmeshError } from '../core/errors.js'
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
      throw new NatmeshError('INVALID_TARGET', `"${target}" is neither a multiaddr, a peer id nor station:<name>`)
    }
    const viaGateways = this.init.gateways().flatMap(({ gateway, connection }) =>
      connection == null ? [] : [relayAddress(connection.remoteAddr, gateway, peer)])
    const station = this.stationOf.get(target)
    const viaStation = station == null ? [] : await this.stationAddresses(station, signal).catch(() => [])
    if (viaGateways.length + viaStation.length === 0) throw new NatmeshError('NO_GATEWAY', `cannot reach ${target}: not connected to any gateway yet`)
    return [...viaStation, ...viaGateways]
  }

  private async stationAddresses (name: string, signal: AbortSignal): Promise<Multiaddr[]> {
    const { record } = await this.init.lookup(name, { signal })
    if (record == null) throw new NatmeshError('STATION_NOT_FOUND', `station ${name} not found`)
    if (record.withdrawn) throw new NatmeshError('STATION_WITHDRAWN', `station ${name} was withdrawn by its owner`)
    if (record.relayAddrs.length === 0) throw new NatmeshError('STATION_OFFLINE', `station ${name} has no gateway at the moment`)
    this.stationOf.set(record.peerId, name)
    return record.relayAddrs.map(address => multiaddr(address))
  }
}
