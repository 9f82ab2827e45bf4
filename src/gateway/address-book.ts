import type { OverlayTransport } from '../core/path.js'
import type { Connection, Libp2p } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

/** A public ip:port the gateway saw a peer connect from; times are ISO strings */
export interface ObservedAddress {
  transport: OverlayTransport
  ip: string
  port: number
  /** e.g. /ip4/1.2.3.4/udp/5000/udx or /ip4/1.2.3.4/tcp/5000 */
  multiaddr: string
  firstSeen: string
  /** the last time a connection from this address opened or closed */
  lastSeen: string
}

export interface ObservedPeer {
  peerId: string
  /** whether at least one connection from the peer is open now */
  connected: boolean
  /** most recently seen first */
  addresses: ObservedAddress[]
}

export interface ObservedAddressBookInit {
  /** peers remembered at most; when full, the least recently seen disconnected peer is forgotten first (default 10000) */
  maxPeers?: number
  /** addresses remembered per peer; a peer behind a symmetric NAT shows a new port on every connection (default 16) */
  maxAddressesPerPeer?: number
  /** how long an address with no open connection is kept (default 1 hour) */
  disconnectedTtlMs?: number
}

const defaults: Required<ObservedAddressBookInit> = {
  maxPeers: 10_000,
  maxAddressesPerPeer: 16,
  disconnectedTtlMs: 60 * 60 * 1000
}

interface AddressEntry {
  transport: OverlayTransport
  ip: string
  port: number
  multiaddr: string
  firstSeen: number
  lastSeen: number
  /** a peer may hold several connections from the same address */
  openConnections: number
}

/** a peer's addresses keyed by multiaddr, least recently seen first */
type PeerEntry = Map<string, AddressEntry>

/**
 * What the gateway sees of each peer's public addresses. Peers behind NATs cannot know their own mapped
 * address; the gateway, a trusted observer, tells them (and the peers they punch to) what it is.
 */
export class ObservedAddressBook {
  private readonly init: Required<ObservedAddressBookInit>
  /** least recently seen first: every update moves a peer (and an address within it) to the end */
  private readonly peers = new Map<string, PeerEntry>()

  constructor (init: ObservedAddressBookInit = {}) {
    this.init = { ...defaults, ...init }
  }

  /** A connection from `remoteAddr` opened. Relayed and non-IP addresses are not observations and are ignored. */
  record (peerId: string, remoteAddr: Multiaddr, now = Date.now()): void {
    const observed = parseObservedAddress(remoteAddr)
    if (observed == null) {
      return
    }

    const peer = this.touch(peerId)
    const address = peer.get(observed.multiaddr)
    peer.delete(observed.multiaddr)
    peer.set(observed.multiaddr, address == null
      ? { ...observed, firstSeen: now, lastSeen: now, openConnections: 1 }
      : { ...address, lastSeen: now, openConnections: address.openConnections + 1 })

    this.expireAddresses(peer, now)
    this.limitAddresses(peer)
    this.limitPeers()
  }

  /** A connection from `remoteAddr` closed */
  disconnected (peerId: string, remoteAddr: Multiaddr, now = Date.now()): void {
    const observed = parseObservedAddress(remoteAddr)
    const address = observed == null ? undefined : this.peers.get(peerId)?.get(observed.multiaddr)

    if (observed == null || address == null) {
      return
    }

    const peer = this.touch(peerId)
    peer.delete(observed.multiaddr)
    peer.set(observed.multiaddr, { ...address, lastSeen: now, openConnections: Math.max(0, address.openConnections - 1) })
  }

  get (peerId: string, now = Date.now()): ObservedPeer | undefined {
    this.expire(now)
    const peer = this.peers.get(peerId)
    return peer == null ? undefined : toObservedPeer(peerId, peer)
  }

  /** most recently seen first */
  list (now = Date.now()): ObservedPeer[] {
    this.expire(now)
    return [...this.peers].reverse().map(([peerId, peer]) => toObservedPeer(peerId, peer))
  }

  /** peers with an open connection over each transport, for the connected-peers gauge */
  countConnected (): Record<OverlayTransport, number> {
    const counts: Record<OverlayTransport, number> = { udx: 0, tcp: 0 }

    for (const peer of this.peers.values()) {
      for (const transport of new Set([...peer.values()].filter(isOpen).map(address => address.transport))) {
        counts[transport]++
      }
    }

    return counts
  }

  /** moves the peer to the most-recently-seen end */
  private touch (peerId: string): PeerEntry {
    const peer: PeerEntry = this.peers.get(peerId) ?? new Map()
    this.peers.delete(peerId)
    this.peers.set(peerId, peer)
    return peer
  }

  /** Forgets peers left with no address. Runs on reads, not on every connection: maxPeers already bounds memory. */
  private expire (now: number): void {
    for (const [peerId, peer] of this.peers) {
      this.expireAddresses(peer, now)

      if (peer.size === 0) {
        this.peers.delete(peerId)
      }
    }
  }

  /** forgets addresses that have had no open connection for longer than the TTL */
  private expireAddresses (peer: PeerEntry, now: number): void {
    const cutoff = now - this.init.disconnectedTtlMs

    for (const [key, address] of peer) {
      if (!isOpen(address) && address.lastSeen < cutoff) {
        peer.delete(key)
      }
    }
  }

  private limitAddresses (peer: PeerEntry): void {
    while (peer.size > this.init.maxAddressesPerPeer) {
      const oldest = firstWhere(peer, address => !isOpen(address)) ?? peer.keys().next().value
      peer.delete(oldest as string)
    }
  }

  private limitPeers (): void {
    while (this.peers.size > this.init.maxPeers) {
      const oldest = firstWhere(this.peers, peer => !isConnected(peer)) ?? this.peers.keys().next().value
      this.peers.delete(oldest as string)
    }
  }
}

/**
 * Keeps the book current from a libp2p node's connection events, counting connections already open.
 * Returns a function that stops listening.
 */
export function observeConnections (node: Pick<Libp2p, 'addEventListener' | 'removeEventListener' | 'getConnections'>, book: ObservedAddressBook): () => void {
  const onOpen = (event: CustomEvent<Connection>): void => {
    book.record(event.detail.remotePeer.toString(), event.detail.remoteAddr)
  }
  const onClose = (event: CustomEvent<Connection>): void => {
    book.disconnected(event.detail.remotePeer.toString(), event.detail.remoteAddr)
  }

  for (const connection of node.getConnections()) {
    book.record(connection.remotePeer.toString(), connection.remoteAddr)
  }
  node.addEventListener('connection:open', onOpen)
  node.addEventListener('connection:close', onClose)

  return () => {
    node.removeEventListener('connection:open', onOpen)
    node.removeEventListener('connection:close', onClose)
  }
}

/** /ip4|ip6/<ip>/udp/<port>/udx or /ip4|ip6/<ip>/tcp/<port>, optionally followed by /p2p/<id>; anything else is not an observation */
function parseObservedAddress (remoteAddr: Multiaddr): Pick<AddressEntry, 'transport' | 'ip' | 'port' | 'multiaddr'> | undefined {
  const components = remoteAddr.getComponents()
  const [ip, port, udx] = components

  if (components.some(component => component.name === 'p2p-circuit') || ip?.value == null || port?.value == null) {
    return undefined
  }
  if (ip.name !== 'ip4' && ip.name !== 'ip6') {
    return undefined
  }

  if (port.name === 'tcp') {
    return { transport: 'tcp', ip: ip.value, port: Number(port.value), multiaddr: `/${ip.name}/${ip.value}/tcp/${port.value}` }
  }
  if (port.name === 'udp' && udx?.name === 'udx') {
    return { transport: 'udx', ip: ip.value, port: Number(port.value), multiaddr: `/${ip.name}/${ip.value}/udp/${port.value}/udx` }
  }

  return undefined
}

function toObservedPeer (peerId: string, peer: PeerEntry): ObservedPeer {
  return {
    peerId,
    connected: isConnected(peer),
    addresses: [...peer.values()].reverse().map(address => ({
      transport: address.transport,
      ip: address.ip,
      port: address.port,
      multiaddr: address.multiaddr,
      firstSeen: new Date(address.firstSeen).toISOString(),
      lastSeen: new Date(address.lastSeen).toISOString()
    }))
  }
}

function isConnected (peer: PeerEntry): boolean {
  for (const address of peer.values()) if (isOpen(address)) return true
  return false
}

function isOpen (address: AddressEntry): boolean {
  return address.openConnections > 0
}

function firstWhere<V> (map: Map<string, V>, predicate: (value: V) => boolean): string | undefined {
  for (const [key, value] of map) {
    if (predicate(value)) {
      return key
    }
  }
  return undefined
}
