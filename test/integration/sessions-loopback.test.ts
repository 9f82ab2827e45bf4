import { afterEach, describe, expect, it } from 'vitest'
import { countedMessage, exchangeCounted } from '../helpers/counted-messages.js'
import { LoopbackMesh } from '../helpers/loopback-mesh.js'

const PROTOCOL = '/test/echo-count/1.0.0'

describe('sessions on loopback', () => {
  let mesh: LoopbackMesh
  afterEach(async () => { await mesh.stop() })

  it('moves from the relay to the direct path mid-stream without losing, duplicating or reordering', async () => {
    mesh = new LoopbackMesh()
    await mesh.startGateway({ allowlist: [] , circuitDataBytes: 1 << 30, circuitDurationMs: 600_000 })
    const a = await mesh.startPeer()
    const b = await mesh.startPeer()
    const count = 2000
    const { fromA, fromB, openedOn, session, bSession } = await exchangeCounted(a, b, PROTOCOL, count)
    expect(openedOn).toBe('relay')
    expect(fromB).toEqual([...Array(count).keys()])
    expect(fromA).toEqual([...Array(count).keys()])
    const stats = session.stats()
    expect(stats.migrations).toBeGreaterThanOrEqual(1)
    expect(stats.path === 'direct' || stats.state === 'closed').toBe(true)
    expect(stats.bytesViaDirect).toBeGreaterThan(0)
    expect(bSession.stats().messagesReceived).toBe(count)
    // each side counts what it sent (once acknowledged, resends after the switch not again) and what it received:
    // both sides' counts add up to exactly the bytes that crossed, whatever the paths
    const crossed = 2 * [...Array(count).keys()].reduce((sum, i) => sum + countedMessage(i).byteLength, 0)
    const other = bSession.stats()
    expect(stats.bytesViaRelay + stats.bytesViaDirect).toBe(crossed)
    expect(other.bytesViaRelay + other.bytesViaDirect).toBe(crossed)
  })
})
