/**
 * In-memory stand-ins for what SessionManager takes from libp2p: a node that registers one stream handler and
 * emits `connection:open`, and connections whose streams are libp2p's own in-memory pairs (`streamPair` from
 * @libp2p/utils). No sockets, no libp2p node: only the session layer is real.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { defaultLogger } from '@libp2p/logger'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { streamPair } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import type { Connection, Libp2p, PeerId, Stream } from '@libp2p/interface'
import { SESSION_PROTOCOL } from '../../../src/upgrade/carrier.js'
import { encodeFrame, FrameDecoder } from '../../../src/upgrade/frames.js'
import type { Frame } from '../../../src/upgrade/frames.js'
import { SessionManager } from '../../../src/upgrade/session-manager.js'
import type { SessionManagerInit } from '../../../src/upgrade/session-manager.js'

type Handler = (stream: Stream, connection: Connection) => void

/** What SessionManager uses of a libp2p node, and nothing else. */
export class StubNode extends EventTarget {
  readonly handlers = new Map<string, Handler>()
  constructor (readonly peerId: PeerId) { super() }
  async handle (protocol: string, handler: Handler): Promise<void> { this.handlers.set(protocol, handler) }
  async unhandle (protocol: string): Promise<void> { this.handlers.delete(protocol) }
  asLibp2p (): Libp2p { return this as unknown as Libp2p }
}

export async function stubNode (): Promise<StubNode> {
  return new StubNode(peerIdFromPrivateKey(await generateKeyPair('Ed25519')))
}

let connections = 0

/**
 * A connection between two stub nodes, seen from each end. `cut()` resets every stream on it at once, as a
 * lost path does; streams opened later fail.
 */
export interface Link {
  atA: Connection
  atB: Connection
  cut: () => void
}

export function link (a: StubNode, b: StubNode, kind: 'relay' | 'direct'): Link {
  const streams = new Set<Stream>()
  let cut = false
  const n = ++connections
  const addressOf = (remote: StubNode, via: StubNode): string => kind === 'relay'
    // a relayed address names the relay; any other peer id does here
    ? `/ip4/127.0.0.1/tcp/1/p2p/${via.peerId.toString()}/p2p-circuit/p2p/${remote.peerId.toString()}`
    : `/ip4/127.0.0.1/tcp/2/p2p/${remote.peerId.toString()}`
  const ends = new Map<StubNode, Connection>()
  const end = (local: StubNode, remote: StubNode): Connection => ({
    id: `${kind}-${n}-${local === a ? 'a' : 'b'}`,
    remotePeer: remote.peerId,
    remoteAddr: multiaddr(addressOf(remote, local)),
    status: 'open',
    newStream: async (protocol: string): Promise<Stream> => {
      if (cut) throw new Error('connection is gone')
      const handler = remote.handlers.get(protocol)
      if (handler == null) throw new Error(`no handler for ${protocol}`)
      const [outbound, inbound] = await streamPair({ protocol })
      streams.add(outbound)
      streams.add(inbound)
      // the handler sees the connection from its own end
      handler(inbound, ends.get(remote) as Connection)
      return outbound
    }
  }) as unknown as Connection
  ends.set(a, end(a, b))
  ends.set(b, end(b, a))
  return {
    atA: ends.get(a) as Connection,
    atB: ends.get(b) as Connection,
    cut: () => {
      cut = true
      for (const stream of streams) stream.abort(new Error('path cut'))
    }
  }
}

/** A SessionManager on `node` whose best connection is whichever of `links` (looked up at call time) fits. */
export function manager (node: StubNode, connectionsTo: () => Connection[], init: Partial<SessionManagerInit> = {}): SessionManager {
  return new SessionManager({
    node: node.asLibp2p(),
    log: defaultLogger().forComponent('test:session'),
    dial: async () => { throw new Error('no gateway in a unit test') },
    bestConnection: (peer, excludeId) => {
      const usable = connectionsTo().filter(c => c.remotePeer.equals(peer) && c.id !== excludeId)
      return usable.find(c => !c.remoteAddr.toString().includes('p2p-circuit')) ?? usable[0]
    },
    ...init
  })
}

/** A raw session stream to `node`, driven frame by frame by the test: the other side written by hand. */
export class RawCarrier {
  private readonly decoder = new FrameDecoder(1024 * 1024)
  private readonly frames: Frame[] = []
  private waiting?: () => void
  closed = false

  constructor (readonly stream: Stream) {
    stream.addEventListener('message', (evt) => {
      this.frames.push(...this.decoder.push(evt.data))
      this.waiting?.()
    })
    stream.addEventListener('close', () => { this.closed = true; this.waiting?.() })
  }

  static async open (connection: Connection): Promise<RawCarrier> {
    return new RawCarrier(await connection.newStream(SESSION_PROTOCOL))
  }

  write (frame: Frame): void {
    for (const part of encodeFrame(frame)) this.stream.send(part)
  }

  writeBytes (bytes: Uint8Array): void {
    this.stream.send(bytes)
  }

  /** The next frame from the session layer; undefined once the stream has closed with none left. */
  async next (): Promise<Frame | undefined> {
    for (;;) {
      const frame = this.frames.shift()
      if (frame != null) return frame
      if (this.closed) return undefined
      await new Promise<void>(resolve => { this.waiting = resolve })
    }
  }

  /** Frames until one satisfies `match`; returns it. */
  async until (match: (frame: Frame) => boolean): Promise<Frame> {
    for (;;) {
      const frame = await this.next()
      if (frame == null) throw new Error('stream closed before the expected frame')
      if (match(frame)) return frame
    }
  }

  async closedNow (): Promise<void> {
    while (!this.closed) await new Promise<void>(resolve => { this.waiting = resolve })
  }
}
