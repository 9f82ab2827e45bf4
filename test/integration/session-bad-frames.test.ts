/**
 * A misbehaving peer on the session protocol: raw libp2p streams on /natmesh/session/1.0.0 from peer A to peer B
 * (both real peers on loopback, in this process) carrying malformed or out-of-place frames, while a legitimate
 * session between the same two peers streams numbered messages both ways. B must stay up, answer what deserves an
 * answer (ERROR for an unknown session, a missing handler, a stream that does not start with OPEN/RESUME), drop
 * the carrier of an established session that misbehaves without losing the session itself, and keep the
 * legitimate session delivering every message, in order, once.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import type { Stream } from '@libp2p/interface'
import type { NatmeshPeer } from '../../src/peer/peer.js'
import { SESSION_PROTOCOL } from '../../src/upgrade/carrier.js'
import { encodeFrame, ErrorCode, FrameDecoder, FrameType } from '../../src/upgrade/frames.js'
import type { Frame } from '../../src/upgrade/frames.js'
import { SessionError } from '../../src/upgrade/session.js'
import type { Session } from '../../src/upgrade/session.js'
import { LoopbackMesh } from '../helpers/loopback-mesh.js'
import { waitFor } from '../helpers/wait-for.js'

const LEGIT = '/test/bad-frames/legit/1.0.0'
/** sessions a raw stream opens: B records what arrives */
const SINK = '/test/bad-frames/sink/1.0.0'
/** sessions a raw stream opens: B's handler sends 9 × 1 MiB without reading; the raw side never acks */
const BURST = '/test/bad-frames/burst/1.0.0'
/** the session layer's set-up timeout (HANDSHAKE_TIMEOUT_MS in src/upgrade/session-manager.ts) */
const HANDSHAKE_TIMEOUT_MS = 10_000
const MiB = 1024 * 1024

/** legit message i: its size cycles through 1 B .. 64 KiB; ≥ 4 B carry i big-endian first, every other byte is i & 0xff */
const SIZES = [1, 3, 4, 100, 1500, 16 * 1024, 64 * 1024, 2]
function legitMessage (i: number): Uint8Array {
  const m = new Uint8Array(SIZES[i % SIZES.length] as number).fill(i & 0xff)
  if (m.byteLength >= 4) new DataView(m.buffer).setUint32(0, i)
  return m
}
function sameBytes (a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength))
}

/** Sends numbered messages (paced) until stopped, then closes; checks what arrives against the same sequence. */
class LegitEnd {
  sent = 0
  received = 0
  firstBad: { at: number, size: number } | null = null
  private stopping = false
  readonly done: Promise<void>

  constructor (readonly session: Session) {
    const sending = (async () => {
      while (!this.stopping) {
        await session.send(legitMessage(this.sent))
        this.sent++
        if (this.sent % 4 === 0) await new Promise(resolve => setTimeout(resolve, 2))
      }
      await session.close()
    })()
    const receiving = (async () => {
      for await (const m of session) {
        if (this.firstBad === null && !sameBytes(m, legitMessage(this.received))) this.firstBad = { at: this.received, size: m.byteLength }
        this.received++
      }
    })()
    this.done = Promise.all([sending, receiving]).then(() => {})
    // awaited at the end; until then a failure must not count as unhandled
    this.done.catch(() => {})
  }

  stop (): void {
    this.stopping = true
  }
}

/** One raw stream on the session protocol: frames out, frames (or a decode error) in, and how it ended. */
class Raw {
  readonly frames: Frame[] = []
  decodeError?: Error
  remoteEnded = false
  closed?: { error?: Error, at: number }
  readonly openedAt = Date.now()
  private readonly wakers = new Set<() => void>()

  constructor (readonly stream: Stream) {
    const decoder = new FrameDecoder(2 * MiB)
    stream.addEventListener('message', (evt) => {
      try {
        this.frames.push(...decoder.push(evt.data))
      } catch (err) {
        this.decodeError = err as Error
      }
      this.wake()
    })
    stream.addEventListener('remoteCloseWrite', () => { this.remoteEnded = true; this.wake() })
    stream.addEventListener('close', (evt) => { this.closed = { error: evt.error, at: Date.now() }; this.wake() })
  }

  static async open (from: NatmeshPeer, to: NatmeshPeer): Promise<Raw> {
    const connection = from.bestConnection(to.peerId)
    if (connection == null) throw new Error('not connected')
    return new Raw(await connection.newStream(SESSION_PROTOCOL, { runOnLimitedConnection: true, signal: AbortSignal.timeout(5000) }))
  }

  write (bytes: Uint8Array): void {
    this.stream.send(bytes)
  }

  writeFrame (frame: Frame): void {
    for (const part of encodeFrame(frame)) this.stream.send(part)
  }

  /** the remote reset the stream, or finished its side of it */
  get ended (): boolean {
    return this.closed != null || this.remoteEnded
  }

  get reset (): boolean {
    return this.closed?.error != null
  }

  async until (check: () => boolean, timeoutMs: number, what: string): Promise<void> {
    if (check()) return
    await new Promise<void>((resolve, reject) => {
      const waker = (): void => { if (check()) { done(); resolve() } }
      const timer = setTimeout(() => { done(); reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; frames ${JSON.stringify(this.frames.map(f => FrameType[f.type]))}, ended ${this.ended}`)) }, timeoutMs)
      const done = (): void => { clearTimeout(timer); this.wakers.delete(waker) }
      this.wakers.add(waker)
    })
  }

  async frame (type: FrameType, timeoutMs = 5000): Promise<Frame> {
    await this.until(() => this.frames.some(f => f.type === type), timeoutMs, `a ${FrameType[type]} frame`)
    return this.frames.find(f => f.type === type) as Frame
  }

  /** OPEN a session for `protocol` with our own id and wait for the ACCEPT */
  async openSession (protocol: string, id: Uint8Array): Promise<bigint> {
    this.writeFrame({ type: FrameType.OPEN, sessionId: id, bootId: BOOT_ID, protocol })
    const accept = await this.frame(FrameType.ACCEPT)
    return (accept as Extract<Frame, { type: FrameType.ACCEPT }>).nextExpected
  }

  private wake (): void {
    for (const waker of [...this.wakers]) waker()
  }
}

/**
 * The raw frames come from peer A, so they carry A's own boot id: a different one would (rightly) tell B that A
 * restarted, and B would fail every session A has with it, the legitimate one included. The id is private to A's
 * session manager, hence the cast.
 */
let BOOT_ID: Uint8Array = new Uint8Array(8)
const u32 = (n: number): Uint8Array => { const b = new Uint8Array(4); new DataView(b.buffer).setUint32(0, n); return b }
const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(Buffer.concat(parts))
const errorCode = (frame: Frame): string => frame.type === FrameType.ERROR ? ErrorCode[frame.code] ?? String(frame.code) : FrameType[frame.type] ?? '?'

describe('session layer against bad frames (loopback, in process)', () => {
  const mesh = new LoopbackMesh()
  let a: NatmeshPeer
  let b: NatmeshPeer
  let legitA: LegitEnd
  let legitB: LegitEnd | undefined
  /** what B's SINK sessions received, by session id */
  const sink = new Map<string, { session: Session, messages: string[], ended: boolean, error?: Error }>()
  /** B's BURST sessions: how their send() calls ended */
  const burst = new Map<string, { session: Session, sent: number, outcome?: { error?: Error, at: number } }>()

  beforeAll(async () => {
    await mesh.startGateway({ circuitDataBytes: 1 << 30, circuitDurationMs: 600_000 })
    a = await mesh.startPeer()
    b = await mesh.startPeer()
    BOOT_ID = (a as unknown as { sessions: { bootId: Uint8Array } }).sessions.bootId
    expect(BOOT_ID.byteLength).toBe(8)
    b.handleSessions(LEGIT, (session) => { legitB = new LegitEnd(session) })
    b.handleSessions(SINK, (session) => {
      const entry: { session: Session, messages: string[], ended: boolean, error?: Error } = { session, messages: [], ended: false }
      sink.set(session.id, entry)
      void (async () => {
        try {
          for await (const m of session) entry.messages.push(Buffer.from(m).toString())
          entry.ended = true
        } catch (err) {
          entry.error = err as Error
        }
      })()
    })
    b.handleSessions(BURST, (session) => {
      const entry: { session: Session, sent: number, outcome?: { error?: Error, at: number } } = { session, sent: 0 }
      burst.set(session.id, entry)
      void (async () => {
        for (let i = 0; i < 9; i++) {
          await session.send(new Uint8Array(MiB).fill(i))
          entry.sent++
        }
      })().then(() => { entry.outcome = { at: Date.now() } }, (err: Error) => { entry.outcome = { error: err, at: Date.now() } })
    })
    legitA = new LegitEnd(await a.openSession(b.peerId.toString(), LEGIT))
    await waitFor(() => legitB != null && legitA.received > 50 && (legitB?.received ?? 0) > 50, 10_000, 'the legitimate session to get going')
    // the raw streams below use the direct connection, like the legitimate session after its migration
    await a.waitForDirect(b.peerId, 10_000)
  }, 30_000)

  afterAll(async () => {
    await mesh.stop()
  }, 30_000)

  it('a stream that does not start with OPEN/RESUME, OPEN for a protocol nobody handles, RESUME of an unknown session: ERROR frames with the right codes', async () => {
    const noHandler = await Raw.open(a, b)
    noHandler.writeFrame({ type: FrameType.OPEN, sessionId: crypto.getRandomValues(new Uint8Array(16)), bootId: BOOT_ID, protocol: '/nobody/handles/this' })
    const unknown = await Raw.open(a, b)
    unknown.writeFrame({ type: FrameType.RESUME, sessionId: crypto.getRandomValues(new Uint8Array(16)), bootId: BOOT_ID, nextExpected: 0n })
    const dataFirst = await Raw.open(a, b)
    dataFirst.writeFrame({ type: FrameType.DATA, seq: 0n, ack: 0n, payload: new Uint8Array([1, 2, 3]) })
    const ackFirst = await Raw.open(a, b)
    ackFirst.writeFrame({ type: FrameType.ACK, ack: 5n })

    expect(errorCode(await noHandler.frame(FrameType.ERROR))).toBe('NO_HANDLER')
    expect(errorCode(await unknown.frame(FrameType.ERROR))).toBe('UNKNOWN_SESSION')
    expect(errorCode(await dataFirst.frame(FrameType.ERROR))).toBe('BAD_FRAME')
    expect(errorCode(await ackFirst.frame(FrameType.ERROR))).toBe('BAD_FRAME')
    // and B finishes those streams
    for (const raw of [noHandler, unknown, dataFirst, ackFirst]) await raw.until(() => raw.ended, 5000, 'B to end the stream')
  })

  it('malformed framing (length 0xFFFFFFFF, length 0, unknown type, a body too short for its type, invalid UTF-8): B resets the stream at once', async () => {
    const cases: Array<[string, Uint8Array]> = [
      ['length 0xFFFFFFFF', concat(u32(0xffffffff), new Uint8Array([FrameType.DATA, 0, 0, 0]))],
      ['length 0', concat(u32(0), new Uint8Array(8))],
      ['unknown type 99', concat(u32(1), new Uint8Array([99]))],
      ['OPEN with a 3-byte body', concat(u32(4), new Uint8Array([FrameType.OPEN, 1, 2, 3]))],
      ['RESUME one byte short', concat(u32(1 + 16 + 8 + 7), new Uint8Array([FrameType.RESUME]), new Uint8Array(31))],
      ['OPEN with a protocol that is not UTF-8', (() => {
        const body = concat(new Uint8Array(16), BOOT_ID, new Uint8Array([0, 2, 0xff, 0xfe]))
        return concat(u32(1 + body.byteLength), new Uint8Array([FrameType.OPEN]), body)
      })()]
    ]
    const raws = await Promise.all(cases.map(async ([, bytes]) => {
      const raw = await Raw.open(a, b)
      raw.write(bytes)
      return raw
    }))
    for (const [i, raw] of raws.entries()) {
      await raw.until(() => raw.ended, 3000, `B to drop the stream after "${cases[i]?.[0]}"`)
      expect(raw.frames.filter(f => f.type === FrameType.ACCEPT), cases[i]?.[0]).toEqual([])
    }
  })

  it('a truncated frame (the length promises more than ever comes): B gives up on the stream within the set-up timeout', async () => {
    const thenEof = await Raw.open(a, b)
    thenEof.write(concat(u32(100), new Uint8Array([FrameType.OPEN]), new Uint8Array(10)))
    await thenEof.stream.close()
    const keptOpen = await Raw.open(a, b)
    keptOpen.write(concat(u32(1 + 16 + 8 + 2 + 20), new Uint8Array([FrameType.OPEN]), new Uint8Array(5)))
    const started = Date.now()
    await Promise.all([
      thenEof.until(() => thenEof.closed != null, HANDSHAKE_TIMEOUT_MS + 3000, 'B to close the stream that ended mid-frame'),
      keptOpen.until(() => keptOpen.ended, HANDSHAKE_TIMEOUT_MS + 3000, 'B to drop the stream stuck mid-frame')
    ])
    console.log(`truncated set-up frames: B dropped the stream that then hit EOF after ${(thenEof.closed?.at ?? 0) - started} ms, the one kept open after ${(keptOpen.closed?.at ?? Date.now()) - started} ms`)
    expect([...thenEof.frames, ...keptOpen.frames].filter(f => f.type === FrameType.ACCEPT)).toEqual([])
  }, HANDSHAKE_TIMEOUT_MS + 10_000)

  it('on an established session: DATA far ahead, ACK beyond what was sent, RESUME expecting more than was sent each cost the carrier, not the session; duplicates are dropped', async () => {
    const id = crypto.getRandomValues(new Uint8Array(16))
    const idHex = Buffer.from(id).toString('hex')
    const text = (s: string): Uint8Array => new TextEncoder().encode(s)

    const first = await Raw.open(a, b)
    expect(await first.openSession(SINK, id)).toBe(0n)
    first.writeFrame({ type: FrameType.DATA, seq: 0n, ack: 0n, payload: text('m0') })
    await waitFor(() => sink.get(idHex)?.messages.length === 1, 5000, 'm0 at B')
    // a sequence number far ahead of the next expected one (0x10000000000): the carrier goes, the session stays
    first.writeFrame({ type: FrameType.DATA, seq: 1n << 40n, ack: 0n, payload: text('from the future') })
    await first.until(() => first.reset, 3000, 'B to reset the carrier')
    expect(sink.get(idHex)?.session.state).toBe('resuming')

    const second = await Raw.open(a, b)
    second.writeFrame({ type: FrameType.RESUME, sessionId: id, bootId: BOOT_ID, nextExpected: 0n })
    const accept = await second.frame(FrameType.ACCEPT) as Extract<Frame, { type: FrameType.ACCEPT }>
    expect(accept.nextExpected).toBe(1n)
    // a duplicate of m0 (dropped), then m1
    second.writeFrame({ type: FrameType.DATA, seq: 0n, ack: 0n, payload: text('m0 again') })
    second.writeFrame({ type: FrameType.DATA, seq: 1n, ack: 0n, payload: text('m1') })
    await waitFor(() => sink.get(idHex)?.messages.length === 2, 5000, 'm1 at B')
    expect(sink.get(idHex)?.session.stats().duplicatesDropped).toBe(1)
    // B has sent nothing on this session: an ACK for 1000 of its messages is a lie
    second.writeFrame({ type: FrameType.ACK, ack: 1000n })
    await second.until(() => second.reset, 3000, 'B to reset the carrier after the absurd ACK')

    // RESUME claiming we already have messages B never sent: B answers ACCEPT, then drops the carrier
    const third = await Raw.open(a, b)
    third.writeFrame({ type: FrameType.RESUME, sessionId: id, bootId: BOOT_ID, nextExpected: 5n })
    await third.until(() => third.ended, 3000, 'B to drop the carrier of an impossible RESUME')

    const fourth = await Raw.open(a, b)
    fourth.writeFrame({ type: FrameType.RESUME, sessionId: id, bootId: BOOT_ID, nextExpected: 0n })
    expect((await fourth.frame(FrameType.ACCEPT) as Extract<Frame, { type: FrameType.ACCEPT }>).nextExpected).toBe(2n)
    fourth.writeFrame({ type: FrameType.DATA, seq: 2n, ack: 0n, payload: text('m2') })
    fourth.writeFrame({ type: FrameType.CLOSE, finalSeq: 3n })
    // our CLOSE ends B's iterator (B never closes its own side of this session)
    await waitFor(() => sink.get(idHex)?.ended === true || sink.get(idHex)?.error != null, 5000, 'the sink session\'s iterator to end')
    expect(sink.get(idHex)?.messages).toEqual(['m0', 'm1', 'm2'])
    expect(sink.get(idHex)?.error).toBeUndefined()
  })

  it('a third peer cannot RESUME (take over) the legitimate session between A and B', async () => {
    const c = await mesh.startPeer()
    await c.connect(b.peerId.toString())
    const raw = await Raw.open(c, b)
    raw.writeFrame({ type: FrameType.RESUME, sessionId: legitA.session.idBytes, bootId: crypto.getRandomValues(new Uint8Array(8)), nextExpected: 0n })
    expect(errorCode(await raw.frame(FrameType.ERROR))).toBe('UNKNOWN_SESSION')
    expect(legitB?.session.state).toBe('open')
  })

  it('when the remote ends a session (ERROR frame) while B\'s send() waits for room in the full resend buffer, that send() rejects', async () => {
    const id = crypto.getRandomValues(new Uint8Array(16))
    const idHex = Buffer.from(id).toString('hex')
    const raw = await Raw.open(a, b)
    await raw.openSession(BURST, id)
    // we read B's DATA but never acknowledge it: after 8 MiB (maxUnackedBytes) B's ninth send() has to wait
    await waitFor(() => burst.get(idHex)?.sent === 8, 10_000, 'B to fill its resend buffer')
    await new Promise(resolve => setTimeout(resolve, 200))
    expect(burst.get(idHex)?.outcome).toBeUndefined()
    const failedAt = Date.now()
    raw.writeFrame({ type: FrameType.ERROR, code: ErrorCode.CLOSED, message: 'going away' })
    await waitFor(() => burst.get(idHex)?.session.state === 'failed', 5000, 'B\'s session to fail')
    let settled = true
    try {
      await waitFor(() => burst.get(idHex)?.outcome, 3000, 'B\'s blocked send() to settle')
    } catch {
      settled = false
    }
    console.log(`blocked send() after the session failed: ${settled ? `settled after ${(burst.get(idHex)?.outcome?.at ?? 0) - failedAt} ms with ${String(burst.get(idHex)?.outcome?.error)}` : 'STILL PENDING 3 s later (hang)'}`)
    expect(settled, 'send() blocked on a full resend buffer must reject once the session has failed').toBe(true)
    expect(burst.get(idHex)?.outcome?.error).toBeInstanceOf(SessionError)
  })

  it('B is still up, accepts new sessions, and the legitimate session delivered every message, in order, once', async () => {
    // the legitimate session ran through everything above
    const fresh = await a.openSession(b.peerId.toString(), SINK)
    await fresh.send(new TextEncoder().encode('still here'))
    await fresh.close()
    await waitFor(() => [...sink.values()].some(e => e.messages.includes('still here')), 5000, 'a new session to work')

    legitA.stop()
    legitB?.stop()
    await Promise.all([legitA.done, legitB?.done])
    console.log(`legitimate session: A sent ${legitA.sent}, B received ${legitB?.received}; B sent ${legitB?.sent}, A received ${legitA.received}; ` +
      `migrations ${legitA.session.stats().migrations}, path ${legitA.session.stats().path}`)
    expect(legitB?.firstBad).toBeNull()
    expect(legitA.firstBad).toBeNull()
    expect(legitB?.received).toBe(legitA.sent)
    expect(legitA.received).toBe(legitB?.sent)
    expect(legitA.sent).toBeGreaterThan(100)
    expect(legitA.session.stats().duplicatesDropped + (legitB?.session.stats().duplicatesDropped ?? 0)).toBeGreaterThanOrEqual(0)
    expect(b.node.status).toBe('started')
  })
})

describe('session ids are per peer (loopback, in process)', () => {
  let mesh: LoopbackMesh
  afterEach(async () => { await mesh.stop() }, 30_000)

  /** drops every connection between the session's two peers and reports what the session does next */
  async function dropPathsAndWatch (legit: Session, from: NatmeshPeer, to: NatmeshPeer): Promise<string> {
    const lost = new Promise<void>(resolve => { legit.addEventListener('resuming', () => { resolve() }, { once: true }) })
    await from.node.hangUp(to.peerId)
    await lost
    return await Promise.race([
      new Promise<string>(resolve => { legit.addEventListener('path', (evt) => { resolve(`resumed on ${evt.detail.path}`) }, { once: true }) }),
      new Promise<string>(resolve => { legit.addEventListener('closed', (evt) => { resolve(`failed: ${String(evt.detail.error)}`) }, { once: true }) }),
      new Promise<string>(resolve => setTimeout(() => { resolve('neither within 15 s') }, 15_000))
    ])
  }

  it('control: a session resumes after every connection between its peers is dropped', async () => {
    mesh = new LoopbackMesh()
    await mesh.startGateway({ circuitDataBytes: 1 << 30, circuitDurationMs: 600_000 })
    const a = await mesh.startPeer()
    const b = await mesh.startPeer()
    const received: string[] = []
    b.handleSessions(SINK, (session) => {
      void (async () => { for await (const m of session) received.push(Buffer.from(m).toString()) })().catch(() => {})
    })
    const legit = await a.openSession(b.peerId.toString(), SINK)
    await legit.send(new TextEncoder().encode('0'))
    await waitFor(() => received.includes('0'), 5000, 'the first message')
    expect(await dropPathsAndWatch(legit, a, b)).toMatch(/^resumed/)
    await legit.send(new TextEncoder().encode('1'))
    await waitFor(() => received.includes('1'), 5000, 'the message after the resume')
    expect(received).toEqual(['0', '1'])
    await legit.close().catch(() => {})
  }, 40_000)

  it('an OPEN from a third peer that reuses the id of a live session neither takes it over nor breaks its resumption', async () => {
    mesh = new LoopbackMesh()
    await mesh.startGateway({ circuitDataBytes: 1 << 30, circuitDurationMs: 600_000 })
    const a = await mesh.startPeer()
    const b = await mesh.startPeer()
    const c = await mesh.startPeer()
    const received: string[] = []
    const accepted: Session[] = []
    b.handleSessions(SINK, (session) => {
      accepted.push(session)
      void (async () => { for await (const m of session) received.push(`${session.peer.toString() === a.peerId.toString() ? 'a' : 'c'}:${Buffer.from(m).toString()}`) })().catch(() => {})
    })
    const legit = await a.openSession(b.peerId.toString(), SINK)
    await legit.send(new TextEncoder().encode('0'))
    await waitFor(() => received.includes('a:0'), 5000, 'the first message')

    await c.connect(b.peerId.toString())
    const raw = await Raw.open(c, b)
    raw.writeFrame({ type: FrameType.OPEN, sessionId: legit.idBytes, bootId: crypto.getRandomValues(new Uint8Array(8)), protocol: SINK })
    await raw.until(() => raw.frames.length > 0 || raw.ended, 5000, 'B\'s answer to the duplicate OPEN')
    const answer = raw.frames[0]
    console.log(`B answered an OPEN from a third peer reusing a live session id with ${answer === undefined ? 'nothing (stream ended)' : errorCode(answer)}`)

    // make A's session resume: drop every connection between A and B
    const outcome = await dropPathsAndWatch(legit, a, b)
    console.log(`A's session after B accepted the duplicate id: ${outcome}`)
    expect(outcome).toMatch(/^resumed/)
    await legit.send(new TextEncoder().encode('1'))
    await waitFor(() => received.includes('a:1'), 5000, 'the message after the resume')
    expect(received.filter(m => m.startsWith('a:'))).toEqual(['a:0', 'a:1'])
    await legit.close().catch(() => {})
  }, 40_000)
})
