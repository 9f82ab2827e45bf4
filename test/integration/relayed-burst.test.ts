import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { NatmeshPeer } from '../../src/peer/peer.js'
import { LoopbackMesh } from '../helpers/loopback-mesh.js'
import { untilEvent } from '../helpers/wait-for.js'

/** more than libp2p's default of 5 inbound connections a second from one IP */
const DIALERS = 12

describe('a burst of relayed connections to one peer (real gateway and peers on 127.0.0.1)', () => {
  const mesh = new LoopbackMesh()
  let target: NatmeshPeer
  const dialers: NatmeshPeer[] = []

  beforeAll(async () => {
    await mesh.startGateway()
    target = await mesh.startPeer({ mode: 'relay-only', natDetection: false })
    for (let i = 0; i < DIALERS; i++) dialers.push(await mesh.startPeer({ mode: 'relay-only', natDetection: false }))
  }, 120_000)

  afterAll(async () => { await mesh.stop() })

  it('accepts every one, though all come from the gateway\'s IP within a second', async () => {
    const dials = await Promise.allSettled(dialers.map(async dialer => dialer.connect(target.peerId.toString())))
    expect(dials.filter(dial => dial.status === 'rejected').map(dial => String((dial as PromiseRejectedResult).reason))).toEqual([])
    // the target's side of each upgrade ends a moment after the dialer's (Noise's last message is on its way)
    const missing = (): string[] => {
      const reached = new Set(target.node.getConnections().map(connection => connection.remotePeer.toString()))
      return dialers.map(dialer => dialer.peerId.toString()).filter(id => !reached.has(id))
    }
    await untilEvent(target.node, 'connection:open', () => missing().length === 0, 10_000, 'every dialer connected at the target')
      .catch(() => { expect(missing()).toEqual([]) })
  }, 60_000)
})
