import type { Session } from '../../src/upgrade/session.js'
import type { NatmeshPeer } from '../../src/peer/peer.js'

/** message i carries i in its first 4 bytes, then filler; the size cycles through 4 B .. 64 KiB */
export function countedMessage (i: number): Uint8Array {
  const sizes = [4, 100, 1500, 16 * 1024, 64 * 1024]
  const m = new Uint8Array(sizes[i % sizes.length] ?? 4)
  new DataView(m.buffer).setUint32(0, i)
  return m
}

/** the numbers of the first `count` counted messages a session receives, in arrival order */
export async function receiveCounted (session: Session, count: number): Promise<number[]> {
  const seen: number[] = []
  for await (const m of session) {
    seen.push(new DataView(m.buffer, m.byteOffset, m.byteLength).getUint32(0))
    if (seen.length === count) break
  }
  return seen
}

export interface CountedExchange {
  /** what each side received, by message number in arrival order */
  fromA: number[]
  fromB: number[]
  /** the path A's session opened on */
  openedOn: Session['path']
  /** A's session, and B's accepted one (both closed) */
  session: Session
  bSession: Session
}

/**
 * A opens a session to B on `protocol`; each side sends `count` counted messages while it reads the other's,
 * then closes. B's side must be done within `timeoutMs`.
 */
export async function exchangeCounted (a: NatmeshPeer, b: NatmeshPeer, protocol: string, count: number, timeoutMs = 30_000): Promise<CountedExchange> {
  const sendAll = async (session: Session): Promise<void> => { for (let i = 0; i < count; i++) await session.send(countedMessage(i)) }
  const received = new Promise<{ fromA: number[], bSession: Session }>((resolve, reject) => {
    b.handleSessions(protocol, async (bSession) => {
      const sending = sendAll(bSession)
      const fromA = await receiveCounted(bSession, count)
      await sending
      await bSession.close()
      resolve({ fromA, bSession })
    })
    setTimeout(() => { reject(new Error('timeout')) }, timeoutMs)
  })
  const session = await a.openSession(b.peerId.toString(), protocol)
  const openedOn = session.path
  const sending = sendAll(session)
  const fromB = await receiveCounted(session, count)
  await sending
  await session.close()
  return { fromB, openedOn, session, ...await received }
}
