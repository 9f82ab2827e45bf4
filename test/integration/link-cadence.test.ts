/**
 * The cadence of a peer's gateway link (src/peer/link-cadence.ts), through real parts: an in-process gateway and
 * two peers on loopback, peer A linked to the gateway through a UDP forwarder that can go silent. An idle link
 * lives on A's own probes (the gateway does not probe back) past the gateway's 30 s silence limit, and rides out
 * a 6 s silence; once A has a path to another peer, the same silence is noticed as `gateway-lost` within the
 * active cadence's 2.5 s.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { PATH_CADENCE } from '../../src/transport/index.js'
import { LoopbackMesh } from '../helpers/loopback-mesh.js'
import { udpForwarder } from '../helpers/udp-forwarder.js'
import type { UdpForwarder } from '../helpers/udp-forwarder.js'

const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

describe('gateway link cadence', () => {
  let mesh: LoopbackMesh
  let forwarder: UdpForwarder | undefined
  afterEach(async () => {
    await mesh.stop()
    await forwarder?.close()
  })

  it('an idle link outlives the gateway silence limit on the peer\'s probes and a 6 s outage; with a peer path the outage is gateway-lost within 2.5 s', async () => {
    mesh = new LoopbackMesh()
    const gateway = await mesh.startGateway()
    const gatewayId = gateway.node.peerId.toString()
    forwarder = await udpForwarder(mesh.gatewayPorts().udp)
    const a = await mesh.startPeer({ mode: 'relay-only', gateways: [`/ip4/127.0.0.1/udp/${forwarder.port}/udx/p2p/${gatewayId}`] })
    const b = await mesh.startPeer({ mode: 'relay-only' })
    expect(a.gateways()).toMatchObject([{ gateway: gatewayId, transport: 'udx' }])
    const holdsA = (): boolean => gateway.node.services.relay.reservations.has(a.peerId)

    // idle past the gateway's own silence limit: only A's probes keep the gateway's end of the link
    await sleep(PATH_CADENCE.idle.deadAfterMs + 2000)
    expect(mesh.eventsOf(a, 'gateway-lost')).toEqual([])
    expect(holdsA()).toBe(true)
    expect(gateway.node.getConnections(a.peerId).filter(conn => conn.status === 'open')).toHaveLength(1)

    // an outage shorter than the idle limit is no loss
    forwarder.cut()
    await sleep(6000)
    forwarder.restore()
    await sleep(1000)
    expect(mesh.eventsOf(a, 'gateway-lost')).toEqual([])

    // a path to another peer: the link goes active, and the same outage is a lost gateway, found fast
    const relayed = await b.connect(a.peerId.toString())
    expect((await b.ping(a.peerId, relayed)).path).toBe('relay')
    // active now: a live gateway answers A's 750 ms probes, so four times the active limit passes without alarm
    await sleep(4 * PATH_CADENCE.active.deadAfterMs)
    expect(mesh.eventsOf(a, 'gateway-lost')).toEqual([])
    forwarder.cut()
    const cutAt = Date.now()
    const lost = await mesh.nextEvent(a, 'gateway-lost', 0, PATH_CADENCE.idle.deadAfterMs)
    const noticedMs = Date.now() - cutAt
    expect(lost.gateway).toBe(gatewayId)
    expect(lost.reason).toMatch(/no packet from the remote/)
    // the idle cadence would have taken 15 s
    expect(noticedMs).toBeLessThan(PATH_CADENCE.idle.deadAfterMs / 2)
  }, 60_000)
})
