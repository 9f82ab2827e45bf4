import type { Session } from '../../src/upgrade/session.js'

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
