/**
 * SessionManager and Session through in-memory streams (see harness.ts): the wire frames of the other side are
 * either another real SessionManager or written by hand. No network, no sleeps: every wait is on a frame, an
 * event or a promise of the session layer.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { ErrorCode, FrameType } from '../../../src/upgrade/frames.js'
import type { Frame } from '../../../src/upgrade/frames.js'
import { SessionError } from '../../../src/upgrade/session.js'
import type { Session } from '../../../src/upgrade/session.js'
import type { SessionManager } from '../../../src/upgrade/session-manager.js'
import { link, manager, RawCarrier, stubNode } from './harness.js'
import type { Link, StubNode } from './harness.js'

const CHAT = '/test/chat/1.0.0'
const enc = new TextEncoder()
const dec = new TextDecoder()
const sessionId = new Uint8Array(16).fill(1)
const bootId = new Uint8Array(8).fill(2)

const stops: SessionManager[] = []
afterEach(async () => {
  for (const m of stops.splice(0)) await m.stop()
})

interface Pair {
  a: StubNode
  b: StubNode
  managerA: SessionManager
  managerB: SessionManager
  links: Link[]
  /** sessions B accepted, in order */
  accepted: Session[]
  nextAccepted: () => Promise<Session>
}

async function pair (): Promise<Pair> {
  const [a, b] = [await stubNode(), await stubNode()]
  const links: Link[] = []
  const managerA = manager(a, () => links.map(l => l.atA))
  const managerB = manager(b, () => links.map(l => l.atB))
  stops.push(managerA, managerB)
  await managerA.start()
  await managerB.start()
  const accepted: Session[] = []
  let wake: (() => void) | undefined
  managerB.handle(CHAT, (session) => { accepted.push(session); wake?.() })
  const nextAccepted = async (): Promise<Session> => {
    while (accepted.length === 0) await new Promise<void>(resolve => { wake = resolve })
    return accepted.shift() as Session
  }
  return { a, b, managerA, managerB, links, accepted, nextAccepted }
}

/** A pair with one link of `kind`, and a session A opened on it, as seen from both ends. */
async function opened (kind: 'relay' | 'direct'): Promise<Pair & { l: Link, session: Session, remote: Session }> {
  const p = await pair()
  const l = link(p.a, p.b, kind)
  p.links.push(l)
  const session = await p.managerA.open(l.atA, CHAT)
  return { ...p, l, session, remote: await p.nextAccepted() }
}

/** A pair with a relayed and a direct link, and a session A opened on the direct one, as seen from both ends. */
async function onDirectBesideRelay (): Promise<Pair & { relay: Link, direct: Link, session: Session, remote: Session }> {
  const p = await pair()
  const relay = link(p.a, p.b, 'relay')
  const direct = link(p.a, p.b, 'direct')
  p.links.push(relay, direct)
  const session = await p.managerA.open(direct.atA, CHAT)
  return { ...p, relay, direct, session, remote: await p.nextAccepted() }
}

/** Reads `count` messages; `onEach(i)` runs after the i-th arrived (0-based), before the next is read. */
async function read (session: Session, count: number, onEach: (i: number) => void = () => {}): Promise<string[]> {
  const out: string[] = []
  if (count === 0) return out
  for await (const message of session) {
    out.push(dec.decode(message))
    onEach(out.length - 1)
    if (out.length === count) break
  }
  return out
}

const numbered = (from: number, to: number): string[] => Array.from({ length: to - from }, (_, i) => `m${from + i}`)

function pathEvent (session: Session, path: 'relay' | 'direct'): Promise<number> {
  return new Promise(resolve => {
    const listener = (evt: CustomEvent<{ path: string, migrations: number }>): void => {
      if (evt.detail.path !== path) return
      session.removeEventListener('path', listener)
      resolve(evt.detail.migrations)
    }
    session.addEventListener('path', listener)
  })
}

describe('SessionManager handshake (hand-written frames on one side)', () => {
  it('answers OPEN with ACCEPT, hands the session to the protocol handler, and acknowledges DATA', async () => {
    const { a, b, links, nextAccepted } = await pair()
    const l = link(a, b, 'relay')
    links.push(l)
    const raw = await RawCarrier.open(l.atA)
    raw.write({ type: FrameType.OPEN, sessionId, bootId, protocol: CHAT })
    expect(await raw.next()).toEqual({ type: FrameType.ACCEPT, nextExpected: 0n })
    const session = await nextAccepted()
    expect(session.role).toBe('responder')
    expect(session.protocol).toBe(CHAT)
    expect(session.id).toBe('01'.repeat(16))
    expect(session.path).toBe('relay')

    raw.write({ type: FrameType.DATA, seq: 0n, ack: 0n, payload: enc.encode('hello') })
    expect(await read(session, 1)).toEqual(['hello'])
    expect(await raw.until(f => f.type === FrameType.ACK && f.ack === 1n)).toEqual({ type: FrameType.ACK, ack: 1n })
  })

  it('refuses with a clear ERROR: no handler, unknown session on RESUME, a stream not starting with OPEN or RESUME', async () => {
    const { a, b, links } = await pair()
    const l = link(a, b, 'direct')
    links.push(l)
    const cases: Array<[Frame, ErrorCode, RegExp]> = [
      [{ type: FrameType.OPEN, sessionId, bootId, protocol: '/nobody/1.0.0' }, ErrorCode.NO_HANDLER, /no session handler/],
      [{ type: FrameType.RESUME, sessionId, bootId, nextExpected: 0n }, ErrorCode.UNKNOWN_SESSION, /unknown session/],
      [{ type: FrameType.ACK, ack: 0n }, ErrorCode.BAD_FRAME, /must start with OPEN or RESUME/]
    ]
    for (const [first, code, message] of cases) {
      const raw = await RawCarrier.open(l.atA)
      raw.write(first)
      const reply = await raw.next()
      expect(reply?.type).toBe(FrameType.ERROR)
      expect(reply).toMatchObject({ code })
      expect((reply as { message: string }).message).toMatch(message)
    }
  })

  it('opens a session between two managers; the initiator is told the responder refused', async () => {
    const { a, b, managerA, links, nextAccepted } = await pair()
    const l = link(a, b, 'relay')
    links.push(l)
    const session = await managerA.open(l.atA, CHAT)
    expect(session.role).toBe('initiator')
    expect((await nextAccepted()).id).toBe(session.id)
    await expect(managerA.open(l.atA, '/nobody/1.0.0')).rejects.toThrow(/remote refused the session: no session handler/)
  })
})

describe('Session migration and resume (two real managers)', () => {
  it('moves from the relay to a direct connection when one opens, losing and repeating nothing', async () => {
    const { a, b, links, session, remote } = await opened('relay')
    for (const m of numbered(0, 20)) await session.send(enc.encode(m))
    expect(await read(remote, 10)).toEqual(numbered(0, 10))

    // a hole punch succeeded: a direct connection opens, with 10 messages still unread on the relay
    const direct = link(a, b, 'direct')
    links.push(direct)
    const moved = pathEvent(session, 'direct')
    a.dispatchEvent(new CustomEvent('connection:open', { detail: direct.atA }))
    expect(await moved).toBe(1)
    expect(session.path).toBe('direct')
    for (const m of numbered(20, 40)) await session.send(enc.encode(m))

    expect(await read(remote, 30)).toEqual(numbered(10, 40))
    await session.close()
    const stats = session.stats()
    expect(stats.migrations).toBe(1)
    expect(stats.messagesSent).toBe(40)
    expect(stats.bytesViaDirect).toBeGreaterThan(0)
    expect(remote.stats().messagesReceived).toBe(40)
  })

  it('tries the move again when the first one fails, without waiting for another connection to open', async () => {
    const { a, b, links, session, remote } = await opened('relay')
    for (const m of numbered(0, 5)) await session.send(enc.encode(m))
    const direct = link(a, b, 'direct')
    links.push(direct)
    // the first stream on the direct connection fails, as a RESUME lost on a lossy path ends in a set-up error
    const newStream = direct.atA.newStream.bind(direct.atA)
    let attempts = 0
    direct.atA.newStream = (async (...args: Parameters<typeof newStream>) => {
      if (++attempts === 1) throw new Error('stream reset')
      return await newStream(...args)
    }) as typeof newStream
    const moved = pathEvent(session, 'direct')
    a.dispatchEvent(new CustomEvent('connection:open', { detail: direct.atA }))
    expect(await moved).toBe(1)
    expect(attempts).toBe(2)
    for (const m of numbered(5, 10)) await session.send(enc.encode(m))
    expect(await read(remote, 10)).toEqual(numbered(0, 10))
    await session.close()
  })

  it('moves to a direct connection that opened while it was resuming on the relay, once that resume is done', async () => {
    const { a, b, links, relay, direct, session, remote } = await onDirectBesideRelay()
    // the resume on the relay is under way when a new direct connection opens (a NAT restart: both paths died,
    // the relay came back first, the punch a moment later)
    const fresh = link(a, b, 'direct')
    const newStream = relay.atA.newStream.bind(relay.atA)
    relay.atA.newStream = (async (...args: Parameters<typeof newStream>) => {
      const stream = await newStream(...args)
      links.push(fresh)
      a.dispatchEvent(new CustomEvent('connection:open', { detail: fresh.atA }))
      return stream
    }) as typeof newStream
    const onRelay = pathEvent(session, 'relay')
    const backOnDirect = pathEvent(session, 'direct')
    links.splice(links.indexOf(direct), 1)
    direct.cut()
    await onRelay
    await backOnDirect
    expect(session.path).toBe('direct')
    for (const m of numbered(0, 5)) await session.send(enc.encode(m))
    expect(await read(remote, 5)).toEqual(numbered(0, 5))
    await session.close()
  })

  it('resumes on another carrier when its path is cut mid-transfer, and the SendBuffer resends what was lost', async () => {
    const { a, b, links, relay, direct, session, remote } = await onDirectBesideRelay()
    const resumed = pathEvent(session, 'relay')
    const sending = (async () => { for (const m of numbered(0, 200)) await session.send(enc.encode(m)) })()
    // the direct path dies after 50 messages arrived, others still in flight on it
    const received = await read(remote, 200, (i) => {
      if (i !== 49) return
      links.splice(links.indexOf(direct), 1)
      direct.cut()
    })
    await sending
    expect(await resumed).toBe(1)
    expect(received).toEqual(numbered(0, 200))
    // all 200 were written before the cut, so what was in flight on the direct stream went again on the relay
    expect(session.stats().framesResent).toBeGreaterThan(0)
    expect(session.stats().path).toBe('relay')
    await session.close()
  })

  it('fails the session on the initiator with UNKNOWN_SESSION when the responder restarted', async () => {
    const { a, b, managerA, links, nextAccepted } = await pair()
    const direct = link(a, b, 'direct')
    links.push(direct)
    const session = await managerA.open(direct.atA, CHAT)
    await nextAccepted()
    // B restarts without a word (a fresh manager takes the protocol), then A's path is cut
    const restarted = manager(b, () => links.map(l => l.atB))
    stops.push(restarted)
    await restarted.start()
    const relay = link(a, b, 'relay')
    links.push(relay)
    direct.cut()
    links.splice(links.indexOf(direct), 1)
    await expect(session.finished()).rejects.toMatchObject({ code: 'UNKNOWN_SESSION' })
    expect(session.state).toBe('failed')
  })
})

describe('bad frames on an established session', () => {
  async function established (): Promise<{ raw: RawCarrier, session: Session, l: Link }> {
    const { a, b, links, nextAccepted } = await pair()
    const l = link(a, b, 'direct')
    links.push(l)
    const raw = await RawCarrier.open(l.atA)
    raw.write({ type: FrameType.OPEN, sessionId, bootId, protocol: CHAT })
    await raw.next()
    return { raw, session: await nextAccepted(), l }
  }

  it('drops the carrier of a frame out of sequence, keeps the session, and resumes it on a new stream', async () => {
    const { raw, session, l } = await established()
    raw.write({ type: FrameType.DATA, seq: 0n, ack: 0n, payload: enc.encode('one') })
    raw.write({ type: FrameType.DATA, seq: 5n, ack: 0n, payload: enc.encode('ahead') })
    await raw.closedNow()
    expect(session.state).toBe('resuming')

    const again = await RawCarrier.open(l.atA)
    again.write({ type: FrameType.RESUME, sessionId, bootId, nextExpected: 0n })
    expect(await again.next()).toEqual({ type: FrameType.ACCEPT, nextExpected: 1n })
    again.write({ type: FrameType.DATA, seq: 1n, ack: 0n, payload: enc.encode('two') })
    expect(await read(session, 2)).toEqual(['one', 'two'])
    expect(session.state).toBe('open')
  })

  it('drops the carrier of a malformed byte stream (absurd length) without touching the session', async () => {
    const { raw, session } = await established()
    raw.writeBytes(Uint8Array.from([0xff, 0xff, 0xff, 0xff, FrameType.DATA]))
    await raw.closedNow()
    expect(session.state).toBe('resuming')
  })

  it('fails the session with a clear error when the remote sends ERROR; the reader sees it', async () => {
    const { raw, session } = await established()
    raw.write({ type: FrameType.ERROR, code: ErrorCode.CLOSED, message: 'app gave up' })
    await expect(read(session, 1)).rejects.toThrow('remote ended the session: app gave up')
    await expect(session.finished()).rejects.toBeInstanceOf(SessionError)
    await expect(session.send(enc.encode('x'))).rejects.toThrow(/remote ended the session/)
    expect(session.state).toBe('failed')
  })
})

describe('close', () => {
  it('close() resolves once the remote acknowledged everything; both ends finish; a late RESUME hears CLOSED', async () => {
    const { l, session, remote } = await opened('direct')
    for (const m of numbered(0, 5)) await session.send(enc.encode(m))
    const closing = session.close()
    const got: string[] = []
    for await (const m of remote) got.push(dec.decode(m))
    expect(got).toEqual(numbered(0, 5))
    await closing
    await expect(session.send(enc.encode('late'))).rejects.toThrow('session is closed for sending')
    await remote.close()
    await Promise.all([session.finished(), remote.finished()])
    expect([session.state, remote.state]).toEqual(['closed', 'closed'])

    const raw = await RawCarrier.open(l.atA)
    raw.write({ type: FrameType.RESUME, sessionId: session.idBytes, bootId, nextExpected: 0n })
    expect(await raw.next()).toMatchObject({ type: FrameType.ERROR, code: ErrorCode.CLOSED })
  })

  it('abort() ends the session at once and the remote fails with the reason', async () => {
    const { session, remote } = await opened('relay')
    session.abort(new SessionError('ABORTED', 'user pressed ctrl-c'))
    await expect(remote.finished()).rejects.toThrow('remote ended the session: user pressed ctrl-c')
    expect(session.state).toBe('failed')
  })
})
