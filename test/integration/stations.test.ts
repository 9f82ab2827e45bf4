/**
 * Stations through a real DHT: three gateways and peers in this process on loopback (test/helpers/gateway-cluster.ts),
 * plus a rogue DHT server that stores whatever it is given and serves it to everyone who asks. Needs a built dist/.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import type { KadDHT } from '@libp2p/kad-dht'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import type { Libp2p } from '@libp2p/interface'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GatewayCluster } from '../helpers/gateway-cluster.ts'
import { NATMESH_DHT_PROTOCOL } from '../../dist/stations/dht.js'
import { signStationRecord, stationKey, STATION_NAMESPACE } from '../../dist/stations/record.js'
import type { StationRecord } from '../../dist/stations/record.js'
import type { NatmeshPeer } from '../../dist/peer/peer.js'
import type { Session } from '../../dist/upgrade/session.js'
import { waitFor } from '../helpers/wait-for.ts'

const ECHO = '/test/station-echo/1.0.0'

/** A DHT server that joins the gateways' DHT but validates nothing: what a compromised gateway would do. */
async function rogueServer (bootstrap: string): Promise<Libp2p<{ dht: KadDHT }>> {
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionGater: { denyDialMultiaddr: () => false },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: NATMESH_DHT_PROTOCOL,
        clientMode: false,
        peerInfoMapper: passthroughMapper,
        validators: { [STATION_NAMESPACE]: async () => {} },
        selectors: { [STATION_NAMESPACE]: () => 0 }
      })
    }
  })
  await node.dial(multiaddr(bootstrap))
  return node as Libp2p<{ dht: KadDHT }>
}

/** how many other DHT servers stored a put (the putting node keeps a copy itself, not counted) */
async function put (dht: KadDHT, name: string, value: Uint8Array): Promise<number> {
  let stored = 0
  for await (const event of dht.put(stationKey(name), value, { signal: AbortSignal.timeout(10_000) })) {
    if (event.name === 'PEER_RESPONSE' && event.messageName === 'PUT_VALUE') stored++
  }
  return stored
}

function echoSessions (peer: NatmeshPeer): void {
  peer.handleSessions(ECHO, async (session) => {
    for await (const message of session) await session.send(message)
  })
}

async function roundTrip (session: Session, text: string): Promise<string> {
  const reply = session[Symbol.asyncIterator]().next()
  await session.send(new TextEncoder().encode(text))
  const { value } = await reply
  return new TextDecoder().decode(value)
}

describe('stations in a DHT of three gateways (loopback)', () => {
  const cluster = new GatewayCluster()
  let alpha: NatmeshPeer
  let beta: NatmeshPeer
  let rogue: Libp2p<{ dht: KadDHT }>

  beforeAll(async () => {
    await cluster.start(3)
    // each peer is told of one gateway only; it finds the others in the DHT
    alpha = await cluster.startPeer('alpha', { stations: ['alpha'], gateways: cluster.addrs(0) })
    beta = await cluster.startPeer('beta', { stations: ['beta'], gateways: cluster.addrs(2), gatewayDiscoveryIntervalMs: 2000 })
    echoSessions(alpha)
    rogue = await rogueServer(cluster.tcpAddr(1))
  })

  afterAll(async () => {
    await rogue?.stop()
    await cluster.stop()
  })

  it('gateways find each other from one bootstrap address; peers find more gateways and hold K = 2 reservations', async () => {
    for (const gateway of cluster.gateways) {
      await waitFor(() => (gateway.node.services.dht as unknown as { routingTable: { size: number } }).routingTable.size >= 2, 15_000, 'every gateway to know the other two')
    }
    for (const peer of [alpha, beta]) {
      await waitFor(() => peer.gateways().filter(g => g.relayAddresses.length > 0).length === 2, 15_000, 'reservations on two gateways')
      expect(cluster.eventsOf(peer, 'gateway-discovered').length).toBeGreaterThanOrEqual(1)
    }
  })

  it('finds a station by name and opens a session to it by name', async () => {
    await waitFor(() => cluster.eventsOf(alpha, 'station-published').some(e => e.relayAddrs.length === 4 && e.gateways >= 2), 15_000, 'alpha published with both gateways')
    const found = await beta.lookup('alpha', { signal: AbortSignal.timeout(10_000) })
    expect(found.record?.peerId).toBe(alpha.peerId.toString())
    expect(found.record?.withdrawn).toBe(false)
    expect(found.hops).toBeGreaterThanOrEqual(1)
    const session = await beta.openSession('station:alpha', ECHO)
    expect(session.peer.toString()).toBe(alpha.peerId.toString())
    expect(await roundTrip(session, 'hello alpha')).toBe('hello alpha')
    await session.close()
    expect((await beta.lookup('nobody-here', { signal: AbortSignal.timeout(10_000) })).record).toBeUndefined()
    await expect(beta.openSession('station:nobody-here', ECHO)).rejects.toMatchObject({ code: 'STATION_NOT_FOUND', message: expect.stringContaining('not found') })
  })

  it('never returns a forged record: a hijack by another key, a record signed by a key not its own, a tampered one', async () => {
    const owner = alpha.peerId.toString()
    const genuine = (await beta.lookup('alpha', { signal: AbortSignal.timeout(10_000) })).record as StationRecord
    const mallory = await generateKeyPair('Ed25519')
    const victim = await generateKeyPair('Ed25519')
    const expiresAt = Date.now() + 60_000
    const bogusAddr = `/ip4/127.0.0.1/tcp/9/p2p/${cluster.gateways[0]?.node.peerId.toString() ?? ''}/p2p-circuit/p2p/`
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    const malloryId = peerIdFromPrivateKey(mallory).toString()
    // 1. mallory claims "alpha" with her own key and a higher sequence number: the gateways hold alpha's claim
    const hijack = await signStationRecord({ ...genuine, peerId: malloryId, relayAddrs: [bogusAddr + malloryId], seq: genuine.seq + 1000, expiresAt }, mallory)
    // 2. a record naming alpha's peer id, signed by mallory
    const wrongKey = await signStationRecord({ ...genuine, relayAddrs: [bogusAddr + owner], seq: genuine.seq + 1000, expiresAt }, mallory)
    // 3. alpha's genuine signed record with its addresses swapped afterwards
    const tampered = new TextEncoder().encode(new TextDecoder().decode(await signStationRecord(genuine, victim)))
    const envelope = JSON.parse(new TextDecoder().decode(tampered)) as { payload: string }
    envelope.payload = Buffer.from(JSON.stringify({ ...genuine, relayAddrs: [bogusAddr + owner], seq: genuine.seq + 1000 })).toString('base64url')
    const forged = [hijack, wrongKey, new TextEncoder().encode(JSON.stringify(envelope))]
    for (const value of forged) {
      // only the rogue server keeps it: every gateway refuses
      expect(await put(rogue.services.dht, 'alpha', value)).toBe(0)
      // only three valid copies exist, so a quorum of 4 waits for every answer, the rogue's too
      const found = await beta.lookup('alpha', { signal: AbortSignal.timeout(10_000), quorum: 4 })
      expect(found.answered + found.rejected).toBeGreaterThanOrEqual(4)
      expect(found.record?.peerId).toBe(owner)
      expect(found.record?.seq).toBe(genuine.seq)
    }
    // a name nobody owns, held only by the rogue server in a record signed by a key not its own: not found
    const orphan = await signStationRecord({ ...genuine, name: 'orphan', relayAddrs: [bogusAddr + owner], expiresAt }, mallory)
    expect(await put(rogue.services.dht, 'orphan', orphan)).toBe(0)
    const none = await beta.lookup('orphan', { signal: AbortSignal.timeout(10_000) })
    expect(none.rejected).toBe(1)
    expect(none.record).toBeUndefined()
  })

  it('never returns an expired record, though the gateways still hold it', async () => {
    const key = await generateKeyPair('Ed25519')
    const { peerIdFromPrivateKey } = await import('@libp2p/peer-id')
    const id = peerIdFromPrivateKey(key).toString()
    const shortLived = await signStationRecord({ name: 'mayfly', peerId: id, relayAddrs: [], mode: 'opportunistic', seq: 1, expiresAt: Date.now() + 1500, withdrawn: false }, key)
    expect(await put(rogue.services.dht, 'mayfly', shortLived)).toBe(3)
    expect((await beta.lookup('mayfly', { signal: AbortSignal.timeout(10_000) })).record?.peerId).toBe(id)
    await new Promise(resolve => setTimeout(resolve, 2000))
    const later = await beta.lookup('mayfly', { signal: AbortSignal.timeout(10_000) })
    expect(later.rejected).toBe(4)
    expect(later.record).toBeUndefined()
    // and the gateways refuse to take it now
    expect(await put(rogue.services.dht, 'mayfly', shortLived)).toBe(0)
  })

  it('a gateway dies: the station stays reachable, its record moves to a live gateway, a session survives', async () => {
    const session = await beta.openSession('station:alpha', ECHO)
    expect(await roundTrip(session, 'before')).toBe('before')
    const held = alpha.gateways().filter(g => g.relayAddresses.length > 0).map(g => g.gateway)
    const victim = cluster.gateways.findIndex(g => held.includes(g.node.peerId.toString()))
    const victimId = cluster.gateways[victim]?.node.peerId.toString() ?? ''
    const killedAt = Date.now()
    await cluster.stopGateway(victim)
    // alpha moves to the third gateway and republishes without the dead one
    await waitFor(() => cluster.eventsOf(alpha, 'station-published').some(e => e.relayAddrs.length === 4 && e.relayAddrs.every(a => !a.includes(victimId))), 30_000, 'alpha republished on two live gateways')
    const failoverMs = Date.now() - killedAt
    const found = await beta.lookup('alpha', { signal: AbortSignal.timeout(10_000) })
    expect(found.record?.relayAddrs.some(a => a.includes(victimId))).toBe(false)
    const fresh = await beta.openSession('station:alpha', ECHO)
    expect(await roundTrip(fresh, 'fresh')).toBe('fresh')
    expect(await roundTrip(session, 'after')).toBe('after')
    console.info(`stations loopback: failover (republished on live gateways) ${failoverMs} ms after the gateway died`)
  })

  it('a clean shutdown withdraws the station', async () => {
    await alpha.stop()
    expect(cluster.eventsOf(alpha, 'station-withdrawn')[0]?.gateways).toBeGreaterThanOrEqual(1)
    const found = await beta.lookup('alpha', { signal: AbortSignal.timeout(10_000) })
    expect(found.record?.withdrawn).toBe(true)
    await expect(beta.openSession('station:alpha', ECHO)).rejects.toMatchObject({ code: 'STATION_WITHDRAWN', message: expect.stringContaining('withdrawn') })
  })
})
