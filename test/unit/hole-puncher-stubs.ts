/**
 * Stubbed libp2p components for HolePuncher unit tests, after js-libp2p's circuit-relay-v2 hop.spec.ts: the
 * registrar keeps the handler it was given, dials come back as stub connections, the UDP overlay transport only
 * records what it was asked to do, and the DCUtR stream is one end of an in-memory stream pair whose other end
 * the test drives with hand-encoded HolePunch messages. No sockets, no timers of ours.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { lpStream, streamPair } from '@libp2p/utils'
import type { LengthPrefixedStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { TypedEventEmitter } from 'main-event'
import type { Connection, Libp2pEvents, PeerId, Stream, StreamHandler } from '@libp2p/interface'
import type { ConnectionManager, Registrar, TransportManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'
import { holePuncher } from '../../src/dcutr/index.js'
import type { HolePuncher, HolePuncherInit, HolePunchOutcome } from '../../src/dcutr/index.js'
import type { Clock } from '../../src/dcutr/clock.js'
import { HolePunch } from '../../src/dcutr/pb/hole-punch.js'
import { UDX_TRANSPORT_TAG } from '../../src/transport/transport.js'
import type { UdpEndpoint } from '../../src/transport/index.js'

export async function newPeerId (): Promise<PeerId> {
  return peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
}

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  at = 1_000_000

  now = (): number => this.at
}

export class FakeSocket {
  readonly sent: Array<{ remote: UdpEndpoint, answer: boolean }> = []
  readonly listeners = new Map<(remote: UdpEndpoint, answer: boolean) => void, Uint8Array>()
  idleClosed = false
  /** resolves once something listens for probes on this socket (a prober or sprayer has started) */
  readonly listening = Promise.withResolvers<void>()

  onProbe (token: Uint8Array, handler: (remote: UdpEndpoint, answer: boolean) => void): () => void {
    this.listeners.set(handler, token)
    this.listening.resolve()
    return () => { this.listeners.delete(handler) }
  }

  sendProbe (remote: UdpEndpoint, _token: Uint8Array, answer: boolean): void {
    this.sent.push({ remote, answer })
  }

  /** a probe from `remote` arrives with `token` */
  hear (remote: UdpEndpoint, token: Uint8Array): void {
    for (const [handler, expected] of this.listeners) {
      if (expected.length === token.length && expected.every((b, i) => b === token[i])) handler(remote, false)
    }
  }

  closeWhenIdle (): void {
    this.idleClosed = true
  }
}

/** The UDP overlay transport as the puncher sees it: punch datagrams, extra sockets, routes, all recorded. */
export class FakeUdx {
  readonly [Symbol.toStringTag] = UDX_TRANSPORT_TAG
  readonly socket = new FakeSocket()
  readonly punched: UdpEndpoint[] = []
  readonly extra: FakeSocket[] = []
  readonly closed: FakeSocket[] = []
  readonly routed: Array<{ remote: UdpEndpoint, socket: FakeSocket }> = []
  readonly opened = Promise.withResolvers<void>()

  async punch (remote: UdpEndpoint): Promise<number> {
    this.punched.push(remote)
    return 0
  }

  openExtraSockets (count: number): FakeSocket[] {
    const sockets = Array.from({ length: count }, () => new FakeSocket())
    this.extra.push(...sockets)
    this.opened.resolve()
    return sockets
  }

  async closeExtraSocket (socket: FakeSocket): Promise<void> {
    this.closed.push(socket)
  }

  routeVia (remote: UdpEndpoint, socket: FakeSocket): () => void {
    this.routed.push({ remote, socket })
    return () => {}
  }
}

export interface StubConnection extends Connection {
  status: Connection['status']
}

export function stubConnection (remotePeer: PeerId, remoteAddr: Multiaddr, init: Partial<Connection> = {}): StubConnection {
  return {
    id: `conn-${Math.random().toString(36).slice(2)}`,
    remotePeer,
    remoteAddr,
    direction: 'outbound',
    status: 'open',
    timeline: { open: 1000 },
    ...init
  } as unknown as StubConnection
}

/** A DCUtR stream pair: `local` goes to the puncher, the test speaks through `remote`. */
export async function dcutrStreams (): Promise<{ local: Stream, remote: Stream, wire: LengthPrefixedStream<Stream> }> {
  const [local, remote] = await streamPair({ delay: 0 })
  return { local, remote, wire: lpStream(remote) }
}

export async function readMessage (wire: LengthPrefixedStream<Stream>): Promise<HolePunch> {
  return HolePunch.decode(await wire.read())
}

export async function writeMessage (wire: LengthPrefixedStream<Stream>, message: Partial<HolePunch>): Promise<void> {
  await wire.write(HolePunch.encode({ observedAddresses: [], localAddresses: [], ...message }))
}

export interface Harness {
  puncher: HolePuncher
  events: TypedEventEmitter<Libp2pEvents>
  udx: FakeUdx
  clock: ManualClock
  /** every openConnection the puncher made, with the addresses it dialled */
  dials: Multiaddr[][]
  /** what openConnection answers with; by default a direct connection to the dialled peer */
  dial: (addresses: Multiaddr[]) => Promise<Connection>
  /** the DCUtR handler the puncher registered (the responder's side) */
  handler: () => StreamHandler
  /** the next hole-punch event */
  nextOutcome: () => Promise<HolePunchOutcome>
  /** what connectionManager.getConnections answers (every peer's) */
  connections: Connection[]
}

export async function harness ({ remote, ...init }: Partial<HolePuncherInit> & { remote: PeerId }): Promise<Harness> {
  const events = new TypedEventEmitter<Libp2pEvents>()
  const udx = new FakeUdx()
  const clock = new ManualClock()
  const dials: Multiaddr[][] = []
  let handler: StreamHandler | undefined
  const registrar = {
    handle: async (_protocol: string, h: StreamHandler) => { handler = h },
    unhandle: async () => {},
    register: async () => 'topology',
    unregister: () => {}
  }
  const h: Harness = {
    events,
    udx,
    clock,
    dials,
    dial: async (addresses) => stubConnection(remote, addresses[0] ?? multiaddr('/ip4/1.2.3.4/udp/1/udx'), { timeline: { open: 1250 } }),
    handler: () => {
      if (handler == null) throw new Error('no DCUtR handler registered')
      return handler
    },
    nextOutcome: async () => await new Promise(resolve => {
      h.puncher.addEventListener('hole-punch', (evt) => { resolve(evt.detail) }, { once: true })
    }),
    puncher: undefined as unknown as HolePuncher,
    connections: []
  }
  const connectionManager = {
    getConnections: () => h.connections,
    openConnection: async (addresses: Multiaddr[], options: { signal?: AbortSignal } = {}) => {
      dials.push(addresses)
      options.signal?.throwIfAborted()
      return await h.dial(addresses)
    }
  }
  const transportManager = {
    getAddrs: () => [],
    getTransports: () => [udx],
    // dials made outside libp2p's queue (early and LAN dials), recorded with the rest
    dial: async (address: Multiaddr, options: { signal?: AbortSignal } = {}) => {
      dials.push([address])
      options.signal?.throwIfAborted()
      return await h.dial([address])
    }
  }
  h.puncher = holePuncher({ publicAddresses: () => [], clock, ...init })({
    registrar: registrar as unknown as Registrar,
    connectionManager: connectionManager as unknown as ConnectionManager,
    transportManager: transportManager as unknown as TransportManager,
    events,
    logger: defaultLogger()
  })
  await h.puncher.start()
  return h
}
