import { createHash, randomFillSync } from 'node:crypto'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { afterEach, describe, expect, it } from 'vitest'
import type { Stream } from '@libp2p/interface'
import { LoopbackMesh } from '../helpers/loopback-mesh.js'

const PROTOCOL = '/test/sink/1.0.0'
const MiB = 1024 * 1024
const TOTAL = 48 * MiB
const CHUNK = 64 * 1024
/** what one circuit may hold at the gateway: about a stream window per direction */
const HOLD_BOUND = 8 * MiB

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** ArrayBuffer memory still referenced after a full collection */
function liveArrayBuffers (): number {
  gc()
  gc()
  return process.memoryUsage().arrayBuffers
}

async function drained (stream: Stream): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const onClose = (): void => { reject(new Error('stream closed while waiting for drain')) }
    stream.addEventListener('drain', () => { stream.removeEventListener('close', onClose); resolve() }, { once: true })
    stream.addEventListener('close', onClose, { once: true })
  })
}

describe('relay memory', () => {
  let mesh: LoopbackMesh
  afterEach(async () => { await mesh.stop() })

  it('keeps nothing of what it relayed, and holds a bounded amount per circuit while relaying', async () => {
    mesh = new LoopbackMesh()
    // the splice is what this measures: natmesh peers on the UDP overlay would get a forwarded circuit, which
    // holds nothing in JS (test/integration/relay-forward.test.ts)
    const gateway = await mesh.startGateway({ circuitDataBytes: 1 << 30, circuitDurationMs: 600_000, relayForwarding: false })
    const a = await mesh.startPeer({ mode: 'relay-only' })
    const b = await mesh.startPeer({ mode: 'relay-only' })
    const receipts: Array<Promise<string>> = []
    await b.node.handle(PROTOCOL, (stream) => {
      receipts.push((async () => {
        const hash = createHash('sha256')
        let bytes = 0
        for await (const chunk of stream) {
          bytes += chunk.byteLength
          hash.update(chunk.subarray())
        }
        await stream.close()
        return `${bytes} ${hash.digest('hex')}`
      })())
    }, { runOnLimitedConnection: true })

    const connection = await a.connect(b.peerId.toString())
    expect(connection.remoteAddr.toString()).toContain('/p2p-circuit')
    const payload = randomFillSync(new Uint8Array(TOTAL))
    const expected = `${TOTAL} ${createHash('sha256').update(payload).digest('hex')}`
    const before = liveArrayBuffers()

    const stream = await connection.newStream(PROTOCOL, { runOnLimitedConnection: true })
    for (let offset = 0; offset < TOTAL; offset += CHUNK) {
      if (!stream.send(payload.subarray(offset, offset + CHUNK))) await drained(stream)
    }
    await stream.close()
    expect(await Promise.all(receipts)).toEqual([expected])

    // the circuit stays open: what the relay still references now, it would keep for the circuit's lifetime
    expect(connection.status).toBe('open')
    expect(liveArrayBuffers() - before).toBeLessThan(16 * MiB)
    expect(gateway.relayBuffers.peakPerCircuit).toBeGreaterThan(0)
    expect(gateway.relayBuffers.peakPerCircuit).toBeLessThanOrEqual(HOLD_BOUND)
    expect(gateway.relayBuffers.current).toBe(0)
  }, 60_000)
})
