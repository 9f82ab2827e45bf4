import { multiaddr } from '@multiformats/multiaddr'
import type { PeerId } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { afterEach, beforeAll, describe, expect, it } from 'vitest'
import { HolePunch, NatMapping } from '../../src/dcutr/pb/hole-punch.js'
import { PROBE_TOKEN_LENGTH } from '../../src/transport/control-message.js'
import { NO_UDP_PATH_REMOTE } from '../../src/dcutr/errors.js'
import type { MappingKind } from '../../src/nat/mapping-profile.js'
import type { UdpEndpoint } from '../../src/transport/index.js'
import { dcutrStreams, harness, newPeerId, readMessage, stubConnection, writeMessage } from './hole-puncher-stubs.js'
import type { Harness, StubConnection } from './hole-puncher-stubs.js'

const { CONNECT, SYNC } = HolePunch.Type
const OWN = multiaddr('/ip4/1.1.1.1/udp/4001/udx')
const THEIRS = multiaddr('/ip4/8.8.8.8/udp/5001/udx')
const THEIR_ENDPOINT: UdpEndpoint = { host: '8.8.8.8', port: 5001, family: 4 }

let remote: PeerId
let gateway: PeerId
let h: Harness | undefined
beforeAll(async () => {
  remote = await newPeerId()
  gateway = await newPeerId()
})
afterEach(async () => {
  await h?.puncher.stop()
  h = undefined
})

const relayedAddr = (): Multiaddr => multiaddr(`/ip4/9.9.9.9/udp/4001/udx/p2p/${gateway.toString()}/p2p-circuit/p2p/${remote.toString()}`)
const text = (addresses: Uint8Array[]): string[] => addresses.map(bytes => multiaddr(bytes).toString())
const mapping = (kind: MappingKind) => async () => ({ kind })

/** B's side: a relayed connection we received, whose DCUtR stream the test answers through `wire`. */
async function initiator (init: Parameters<typeof harness>[0]) {
  h = await harness(init)
  const { local, wire } = await dcutrStreams()
  const relayed = stubConnection(remote, relayedAddr(), { direction: 'inbound', newStream: async () => local })
  return { h, wire, relayed, outcome: h.puncher.initiate(relayed) }
}

/** A's side: the test, as B, opens a DCUtR stream over the relayed connection. */
async function responder (init: Parameters<typeof harness>[0]) {
  h = await harness(init)
  const relayed = stubConnection(remote, relayedAddr())
  const open = async () => {
    const { local, wire } = await dcutrStreams()
    return { wire, handled: (h as Harness).handler()(local, relayed) }
  }
  return { h, relayed, open }
}

function close (h: Harness, relayed: StubConnection): void {
  relayed.status = 'closed'
  h.events.safeDispatchEvent('connection:close', { detail: relayed })
}

describe('HolePuncher as the initiator (B)', () => {
  it('sends CONNECT with its public addresses and mapping, SYNC once the answer is in, and punches at once (plain DCUtR)', async () => {
    const { h, wire, outcome } = await initiator({ remote, publicAddresses: () => [OWN], natMapping: mapping('endpoint-independent') })
    const connect = await readMessage(wire)
    expect(connect.type).toBe(CONNECT)
    expect(text(connect.observedAddresses)).toEqual([OWN.toString()])
    expect(connect.mapping).toEqual({ kind: NatMapping.Kind.ENDPOINT_INDEPENDENT })
    expect(connect.probeToken?.byteLength).toBe(PROBE_TOKEN_LENGTH)
    h.clock.at += 80
    await writeMessage(wire, { type: CONNECT, observedAddresses: [THEIRS.bytes], mapping: { kind: NatMapping.Kind.ENDPOINT_INDEPENDENT } })
    const sync = await readMessage(wire)
    expect(sync.type).toBe(SYNC)
    // no half round trip's wait: the responder dialled when it answered, so its NAT is open for our punch already
    expect(await outcome).toMatchObject({ outcome: 'success', attempts: 1, strategy: 'dcutr', msSinceRelay: 250, cost: { ms: 80, sockets: 0 } })
    expect(h.dials.map(addresses => addresses.map(String))).toEqual([[THEIRS.toString()]])
    expect(h.udx.punched).toEqual([THEIR_ENDPOINT])
    const { phases } = await outcome
    expect(Object.keys(phases ?? {})).toEqual(['stream', 'connect', 'sync', 'direct'])
    expect(phases?.direct).toBe(250)
  })

  it('skips without SYNC when both NATs change ports per destination', async () => {
    const { h, wire, outcome } = await initiator({ remote, publicAddresses: () => [OWN], natMapping: mapping('random') })
    await readMessage(wire)
    await writeMessage(wire, { type: CONNECT, observedAddresses: [THEIRS.bytes], mapping: { kind: NatMapping.Kind.RANDOM } })
    expect(await outcome).toMatchObject({ outcome: 'skipped', strategy: 'skip', code: 'BOTH_SYMMETRIC', reason: expect.stringMatching(/both NATs/) })
    await expect(wire.read()).rejects.toThrow()
    expect(h.dials).toEqual([])
  })

  it('skips as NO_BIRTHDAY when a birthday punch is needed and the responder did not echo the probe token', async () => {
    const { wire, outcome } = await initiator({ remote, publicAddresses: () => [OWN], natMapping: mapping('random') })
    await readMessage(wire)
    await writeMessage(wire, { type: CONNECT, observedAddresses: [THEIRS.bytes], mapping: { kind: NatMapping.Kind.ENDPOINT_INDEPENDENT } })
    expect(await outcome).toMatchObject({ outcome: 'skipped', strategy: 'skip', code: 'NO_BIRTHDAY' })
  })

  it('birthday punches when it is the port-changing side and the token is echoed: sprays from its extra sockets, dials from the one that heard a probe', async () => {
    const { h, wire, outcome } = await initiator({ remote, publicAddresses: () => [OWN], natMapping: mapping('random'), birthday: { sockets: 4 } })
    const connect = await readMessage(wire)
    const token = connect.probeToken as Uint8Array<ArrayBuffer>
    await writeMessage(wire, { type: CONNECT, observedAddresses: [THEIRS.bytes], mapping: { kind: NatMapping.Kind.ENDPOINT_INDEPENDENT }, probeToken: token })
    expect((await readMessage(wire)).type).toBe(SYNC)
    // the sockets were opened before SYNC went out, so the spray starts on time, and at once: the sprayer does not
    // wait the half round trip, its mappings are open before the responder's probes come
    expect(h.udx.extra).toHaveLength(4)
    const winner = h.udx.extra[2]
    await winner?.listening.promise
    expect(h.udx.extra.map(socket => socket.sent[0])).toEqual(Array(4).fill({ remote: THEIR_ENDPOINT, answer: false }))
    winner?.hear(THEIR_ENDPOINT, token)
    expect(await outcome).toMatchObject({ outcome: 'success', strategy: 'birthday', cost: { sockets: 4, sprays: 4 } })
    expect(h.udx.routed).toEqual([{ remote: THEIR_ENDPOINT, socket: winner }])
    expect(h.dials.map(addresses => addresses.map(String))).toEqual([[`${THEIRS.toString()}/p2p/${remote.toString()}`]])
    expect(winner?.idleClosed).toBe(true)
    expect(h.udx.closed).toHaveLength(3)
    expect(h.udx.closed).not.toContain(winner)
  })

  it('skips as NO_UDP_PATH when the responder\'s CONNECT offers no public UDP overlay address', async () => {
    const { h, wire, outcome } = await initiator({ remote, publicAddresses: () => [OWN] })
    await readMessage(wire)
    await writeMessage(wire, { type: CONNECT, observedAddresses: [multiaddr('/ip4/192.168.1.20/udp/5001/udx').bytes, multiaddr('/ip4/8.8.8.8/tcp/4001').bytes] })
    expect(await outcome).toMatchObject({ outcome: 'skipped', code: 'NO_UDP_PATH', reason: NO_UDP_PATH_REMOTE })
    expect(h.dials).toEqual([])
  })

  it('skips as NO_DCUTR when the remote refuses the protocol', async () => {
    h = await harness({ remote, publicAddresses: () => [OWN] })
    const refused = Object.assign(new Error('protocol selection failed'), { name: 'UnsupportedProtocolError' })
    const relayed = stubConnection(remote, relayedAddr(), { direction: 'inbound', newStream: async () => { throw refused } })
    expect(await h.puncher.initiate(relayed)).toMatchObject({ outcome: 'skipped', attempts: 1, code: 'NO_DCUTR' })
  })

  it('fails as CUT_SHORT, without retrying, when the relayed connection closes mid-exchange', async () => {
    const { h, wire, relayed, outcome } = await initiator({ remote, publicAddresses: () => [OWN], retries: 3 })
    await readMessage(wire)
    close(h, relayed)
    expect(await outcome).toMatchObject({ outcome: 'failure', attempts: 1, code: 'CUT_SHORT', reason: 'cut short after 0 ms: the relayed connection closed before the punch finished' })
  })

  it('birthday probes right after SYNC when the responder sprays (it has sprayed since it answered); the relayed connection closing cuts the probing short', async () => {
    const { h, wire, relayed, outcome } = await initiator({ remote, publicAddresses: () => [OWN], natMapping: mapping('endpoint-independent') })
    const connect = await readMessage(wire)
    await writeMessage(wire, { type: CONNECT, observedAddresses: [THEIRS.bytes], mapping: { kind: NatMapping.Kind.RANDOM }, probeToken: connect.probeToken })
    expect((await readMessage(wire)).type).toBe(SYNC)
    await h.udx.socket.listening.promise
    expect(h.udx.socket.sent.length).toBeGreaterThan(0)
    expect(h.udx.socket.sent.every(probe => probe.remote.host === THEIR_ENDPOINT.host && !probe.answer)).toBe(true)
    close(h, relayed)
    expect(await outcome).toMatchObject({ outcome: 'failure', code: 'CUT_SHORT', reason: expect.stringMatching(/the relayed connection closed/) })
  })

  it('fails as RELAY_CLOSED when the relayed connection is gone before the next attempt', async () => {
    const { wire, relayed, outcome } = await initiator({ remote, publicAddresses: () => [OWN], retries: 2 })
    await readMessage(wire)
    relayed.status = 'closed'
    await writeMessage(wire, { type: SYNC })
    expect(await outcome).toMatchObject({ outcome: 'failure', attempts: 1, code: 'RELAY_CLOSED' })
  })

  it('fails as BAD_MESSAGE on an undecodable answer, with a clear reason', async () => {
    const { wire, outcome } = await initiator({ remote, publicAddresses: () => [OWN], retries: 1 })
    await readMessage(wire)
    // field 2 (observedAddresses) announces 100 bytes and carries one
    await wire.write(Uint8Array.from([0x12, 0x64, 0x01]))
    expect(await outcome).toMatchObject({ outcome: 'failure', attempts: 1, code: 'BAD_MESSAGE', reason: expect.stringMatching(/^unreadable DCUtR message: /) })
  })

  it('fails as TIMEOUT when no answer comes within the attempt\'s limit', async () => {
    const { wire, outcome } = await initiator({ remote, publicAddresses: () => [OWN], retries: 1, timeoutMs: 30 })
    await readMessage(wire)
    expect(await outcome).toMatchObject({ outcome: 'failure', attempts: 1, code: 'TIMEOUT' })
  })

  it('skips as NO_UDP_PATH, before any exchange, when this peer has no public address', async () => {
    h = await harness({ remote, publicAddresses: () => [] })
    const relayed = stubConnection(remote, relayedAddr(), { direction: 'inbound', newStream: async () => { throw new Error('no stream expected') } })
    expect(await h.puncher.initiate(relayed)).toMatchObject({ outcome: 'skipped', attempts: 0, code: 'NO_UDP_PATH' })
  })
})

describe('HolePuncher as the responder (A)', () => {
  it('answers CONNECT with its addresses and mapping, echoes the probe token, and dials right after, without waiting for SYNC (plain DCUtR)', async () => {
    const { h, open } = await responder({ remote, publicAddresses: () => [OWN], natMapping: mapping('endpoint-independent') })
    const { wire, handled } = await open()
    const outcome = h.nextOutcome()
    const token = new Uint8Array(PROBE_TOKEN_LENGTH).fill(7)
    await writeMessage(wire, { type: CONNECT, observedAddresses: [THEIRS.bytes], mapping: { kind: NatMapping.Kind.ENDPOINT_INDEPENDENT }, probeToken: token })
    const answer = await readMessage(wire)
    expect(answer.type).toBe(CONNECT)
    expect(text(answer.observedAddresses)).toEqual([OWN.toString()])
    expect(answer.mapping).toEqual({ kind: NatMapping.Kind.ENDPOINT_INDEPENDENT })
    expect(answer.probeToken).toEqual(token)
    expect(answer.localAddresses).toEqual([])
    expect(await outcome).toMatchObject({ outcome: 'success', attempts: 1, strategy: 'dcutr', msSinceRelay: 250 })
    expect(h.dials.map(addresses => addresses.map(String))).toEqual([[THEIRS.toString()]])
    // punch datagrams are the initiator's job
    expect(h.udx.punched).toEqual([])
    await handled
  })

  it('answers a CONNECT with no usable address, then skips as NO_UDP_PATH', async () => {
    const { h, open } = await responder({ remote, publicAddresses: () => [OWN] })
    const { wire, handled } = await open()
    const outcome = h.nextOutcome()
    await writeMessage(wire, { type: CONNECT, observedAddresses: [multiaddr('/ip4/10.0.0.7/udp/5001/udx').bytes, relayedAddr().bytes, Uint8Array.from([0xff, 0x01])] })
    expect((await readMessage(wire)).type).toBe(CONNECT)
    expect(await outcome).toMatchObject({ outcome: 'skipped', code: 'NO_UDP_PATH', reason: NO_UDP_PATH_REMOTE })
    await handled
    expect(h.dials).toEqual([])
  })

  it('skips as BOTH_SYMMETRIC when its NAT and the initiator\'s both change ports', async () => {
    const { h, open } = await responder({ remote, publicAddresses: () => [OWN], natMapping: mapping('sequential') })
    const { wire } = await open()
    const outcome = h.nextOutcome()
    await writeMessage(wire, { type: CONNECT, observedAddresses: [THEIRS.bytes], mapping: { kind: NatMapping.Kind.RANDOM } })
    expect(await outcome).toMatchObject({ outcome: 'skipped', strategy: 'skip', code: 'BOTH_SYMMETRIC' })
  })

  it('spends its birthday budget per peer: a punch over budget fails as BUDGET_SPENT, the next offer is declined until a minute has passed', async () => {
    const { h, open } = await responder({ remote, publicAddresses: () => [OWN], natMapping: mapping('endpoint-independent'), birthday: { attemptsPerPeerPerMinute: 1 } })
    const offer = { type: CONNECT, observedAddresses: [THEIRS.bytes], mapping: { kind: NatMapping.Kind.RANDOM }, probeToken: new Uint8Array(PROBE_TOKEN_LENGTH).fill(3) }
    const first = await open()
    const second = await open()
    // the first punch probes until its budget of time runs out, so the first outcome is the second's
    const spent = h.nextOutcome()
    await writeMessage(first.wire, offer)
    await writeMessage(second.wire, offer)
    // both accepted while nothing was spent yet
    expect((await readMessage(first.wire)).probeToken).toEqual(offer.probeToken)
    expect((await readMessage(second.wire)).probeToken).toEqual(offer.probeToken)
    // one took the budget and probes (the prober's side: the initiator sprays), without waiting for SYNC
    await h.udx.socket.listening.promise
    expect(await spent).toMatchObject({ outcome: 'failure', strategy: 'birthday', code: 'BUDGET_SPENT' })
    const third = await open()
    const declined = h.nextOutcome()
    await writeMessage(third.wire, offer)
    expect((await readMessage(third.wire)).probeToken).toBeUndefined()
    expect(await declined).toMatchObject({ outcome: 'skipped', code: 'NO_BIRTHDAY' })
    h.clock.at += 60_001
    const fourth = await open()
    await writeMessage(fourth.wire, offer)
    expect((await readMessage(fourth.wire)).probeToken).toEqual(offer.probeToken)
  })

  it('fails as BAD_MESSAGE, without throwing, on a message out of order', async () => {
    const { h, open } = await responder({ remote, publicAddresses: () => [OWN] })
    const { wire, handled } = await open()
    const outcome = h.nextOutcome()
    await writeMessage(wire, { type: SYNC })
    expect(await outcome).toMatchObject({ outcome: 'failure', code: 'BAD_MESSAGE', reason: 'expected CONNECT, got SYNC' })
    await expect(handled).resolves.toBeUndefined()
  })

  it('fails as BAD_MESSAGE on a message over the size limit', async () => {
    const { h, open } = await responder({ remote, publicAddresses: () => [OWN] })
    const { wire, handled } = await open()
    const outcome = h.nextOutcome()
    await wire.write(new Uint8Array(5000))
    expect(await outcome).toMatchObject({ outcome: 'failure', code: 'BAD_MESSAGE', reason: expect.stringMatching(/too long/) })
    await expect(handled).resolves.toBeUndefined()
  })

  it('starts its half of a birthday punch right after answering, before SYNC: as the prober, probes; as the sprayer, sprays', async () => {
    const prober = await responder({ remote, publicAddresses: () => [OWN], natMapping: mapping('endpoint-independent') })
    const probing = await prober.open()
    const cut = prober.h.nextOutcome()
    await writeMessage(probing.wire, { type: CONNECT, observedAddresses: [THEIRS.bytes], mapping: { kind: NatMapping.Kind.RANDOM }, probeToken: new Uint8Array(PROBE_TOKEN_LENGTH).fill(3) })
    await readMessage(probing.wire)
    await prober.h.udx.socket.listening.promise
    expect(prober.h.udx.socket.sent.length).toBeGreaterThan(0)
    expect(prober.h.udx.socket.sent.every(probe => probe.remote.host === THEIR_ENDPOINT.host && !probe.answer)).toBe(true)
    // the relayed connection closing cuts it short
    close(prober.h, prober.relayed)
    expect(await cut).toMatchObject({ outcome: 'failure', code: 'CUT_SHORT', reason: expect.stringMatching(/^cut short after 0 ms: the relayed connection closed/) })
    await prober.h.puncher.stop()

    const sprayer = await responder({ remote, publicAddresses: () => [OWN], natMapping: mapping('random'), birthday: { sockets: 4 } })
    const spraying = await sprayer.open()
    const token = new Uint8Array(PROBE_TOKEN_LENGTH).fill(5)
    const outcome = sprayer.h.nextOutcome()
    await writeMessage(spraying.wire, { type: CONNECT, observedAddresses: [THEIRS.bytes], mapping: { kind: NatMapping.Kind.ENDPOINT_INDEPENDENT }, probeToken: token })
    expect((await readMessage(spraying.wire)).probeToken).toEqual(token)
    const winner = sprayer.h.udx.extra[1]
    await winner?.listening.promise
    expect(sprayer.h.udx.extra.map(socket => socket.sent[0])).toEqual(Array(4).fill({ remote: THEIR_ENDPOINT, answer: false }))
    winner?.hear(THEIR_ENDPOINT, token)
    expect(await outcome).toMatchObject({ outcome: 'success', strategy: 'birthday', cost: { sockets: 4, sprays: 4 } })
    expect(sprayer.h.udx.routed).toEqual([{ remote: THEIR_ENDPOINT, socket: winner }])
  })
})

describe('HolePuncher: the early dial a forwarded circuit starts (punchEarly)', () => {
  const THEIR_MAPPING: UdpEndpoint = { host: '8.8.8.8', port: 5001, family: 4 }

  it('dials the remote\'s mapping at once and tells of the success, timed from when the circuit\'s connection began', async () => {
    h = await harness({ remote, natMapping: mapping('endpoint-independent') })
    const outcome = h.nextOutcome()
    h.puncher.punchEarly(remote, THEIR_MAPPING, 1000)
    expect(await outcome).toMatchObject({ outcome: 'success', attempts: 1, strategy: 'dcutr', msSinceRelay: 250, phases: { direct: 250 } })
    expect(h.dials.map(addresses => addresses.map(String))).toEqual([[`/ip4/8.8.8.8/udp/5001/udx/p2p/${remote.toString()}`]])
  })

  it('does not dial when its NAT gives each destination a port of its own (the remote\'s dial could not meet it), nor a private mapping unless allowed', async () => {
    h = await harness({ remote, natMapping: mapping('random') })
    h.puncher.punchEarly(remote, THEIR_MAPPING, 1000)
    await h.puncher.stop()
    h = await harness({ remote, natMapping: mapping('endpoint-independent') })
    h.puncher.punchEarly(remote, { host: '192.168.1.20', port: 5001, family: 4 }, 1000)
    await new Promise(resolve => setImmediate(resolve))
    expect(h.dials).toEqual([])
  })

  it('dials once per peer while a dial is under way', async () => {
    h = await harness({ remote, natMapping: mapping('endpoint-independent') })
    const answer = Promise.withResolvers<void>()
    const dial = h.dial
    h.dial = async (addresses) => { await answer.promise; return await dial(addresses) }
    h.puncher.punchEarly(remote, THEIR_MAPPING, 1000)
    h.puncher.punchEarly(remote, THEIR_MAPPING, 1000)
    await new Promise(resolve => setImmediate(resolve))
    expect(h.dials).toHaveLength(1)
    answer.resolve()
  })

  it('a relayed connection with a direct one opened since it began: the early dials got there first, a success told once', async () => {
    h = await harness({ remote, publicAddresses: () => [OWN] })
    const relayed = stubConnection(remote, relayedAddr(), { direction: 'inbound', newStream: async () => { throw new Error('no exchange expected') } })
    const direct = stubConnection(remote, THEIRS, { timeline: { open: 1100 } })
    h.connections.push(direct)
    expect(await h.puncher.initiate(relayed)).toMatchObject({ outcome: 'success', strategy: 'dcutr', msSinceRelay: 100, direct })
    // the same path found again is not told again (no second event)
    const told: unknown[] = []
    h.puncher.addEventListener('hole-punch', (evt) => { told.push(evt.detail) })
    await h.puncher.initiate(relayed)
    expect(told).toEqual([])
  })

  it('a relayed connection with a direct one older than it: skipped as ALREADY_DIRECT', async () => {
    h = await harness({ remote, publicAddresses: () => [OWN] })
    const relayed = stubConnection(remote, relayedAddr(), { direction: 'inbound', newStream: async () => { throw new Error('no exchange expected') } })
    h.connections.push(stubConnection(remote, THEIRS, { timeline: { open: 900 } }))
    expect(await h.puncher.initiate(relayed)).toMatchObject({ outcome: 'skipped', code: 'ALREADY_DIRECT' })
  })
})
