import { afterEach, describe, expect, it } from 'vitest'
import { LoopbackMesh } from '../helpers/loopback-mesh.js'

describe('session close', () => {
  let mesh: LoopbackMesh
  afterEach(async () => { await mesh.stop() })

  it('ends cleanly on both sides even when the side that finishes last stops its peer at once', async () => {
    mesh = new LoopbackMesh()
    await mesh.startGateway()
    const a = await mesh.startPeer()
    const b = await mesh.startPeer()
    const received = new Promise<number>((resolve, reject) => {
      b.handleSessions('/test/sink/1.0.0', async (session) => {
        try {
          await session.close()
          let bytes = 0
          for await (const m of session) bytes += m.byteLength
          await session.finished()
          // like `natmesh cat`: the process goes away as soon as its session is done
          await b.stop()
          resolve(bytes)
        } catch (err) { reject(err) }
      })
    })
    const session = await a.openSession(b.peerId.toString(), '/test/sink/1.0.0')
    for (let i = 0; i < 100; i++) await session.send(new Uint8Array(30_000).fill(i))
    await session.close()
    for await (const _ of session) { /* b sends nothing */ }
    expect(await received).toBe(3_000_000)
    await session.finished()
    expect(session.stats().state).toBe('closed')
  }, 20_000)
})
