/**
 * The gateway's STUN server over real loopback sockets: RFC 8489 Binding, RFC 5780 CHANGE-REQUEST from the other
 * port and the alternate IP (127.0.0.2: all of 127/8 is local on Linux), junk that never stops it, and the per-IP
 * rate limit, measured.
 */
import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import type { Socket } from 'node:dgram'
import { decode, validateFingerprint } from '@msimerson/stun'
import { afterEach, describe, expect, it } from 'vitest'
import { bindingRequest, parseBindingResponse } from '../../src/stun/codec.js'
import type { Endpoint } from '../../src/stun/codec.js'
import { StunServer } from '../../src/stun/server.js'
import type { StunServerInit } from '../../src/stun/server.js'
import { createLogger } from '../../src/core/logging.js'
import { StunClient } from '../../src/stun/client.js'
import { retransmitWithin } from '../../src/stun/transaction.js'
import { waitFor } from '../helpers/wait-for.js'

/** each test waits up to 2 s for its answer, retransmitting meanwhile */
const WITHIN_2S = retransmitWithin(2000)

const opened: Array<StunServer | Socket> = []

async function server (init: Partial<StunServerInit> = {}): Promise<StunServer> {
  const stun = new StunServer({ host: '127.0.0.1', port: 0, otherPort: 0, ratePerSecond: 100, burst: 200, logger: createLogger({ level: 'silent' }), ...init })
  opened.push(stun)
  await stun.start()
  return stun
}

async function socketOn (address: string): Promise<Socket> {
  const socket = createSocket('udp4')
  opened.push(socket)
  await new Promise<void>((resolve) => { socket.bind(0, address, resolve) })
  return socket
}

/** the next datagram on the socket, with where it came from */
async function nextDatagram (socket: Socket): Promise<{ datagram: Buffer, from: Endpoint }> {
  return new Promise((resolve) => {
    socket.once('message', (datagram, rinfo) => { resolve({ datagram, from: { address: rinfo.address, port: rinfo.port } }) })
  })
}

afterEach(async () => {
  for (const item of opened.splice(0)) {
    if (item instanceof StunServer) await item.stop()
    else item.close()
  }
})

describe('STUN server', () => {
  it('answers a Binding request with XOR-MAPPED-ADDRESS, RESPONSE-ORIGIN, OTHER-ADDRESS, and FINGERPRINT when the request had one', async () => {
    const stun = await server({ alternateAddress: '127.0.0.2' })
    const [primary, other, alternate, alternateOther] = stun.addresses()
    expect(alternate).toEqual({ address: '127.0.0.2', port: primary?.port })
    expect(alternateOther).toEqual({ address: '127.0.0.2', port: other?.port })
    const client = await socketOn('127.0.0.1')
    const answer = nextDatagram(client)
    client.send(bindingRequest(randomBytes(12), undefined, { fingerprint: true }), primary?.port, '127.0.0.1')
    const { datagram, from } = await answer
    expect(validateFingerprint(decode(datagram))).toBe(true)
    const plain = nextDatagram(client)
    client.send(bindingRequest(randomBytes(12)), primary?.port, '127.0.0.1')
    expect(decode((await plain).datagram).hasAttribute(0x8028)).toBe(false)
    expect(from).toEqual(primary)
    expect(parseBindingResponse(datagram)).toMatchObject({
      kind: 'success',
      mapped: { address: '127.0.0.1', port: client.address().port },
      origin: primary,
      // the alternate IP on the port the request did not reach
      other: alternateOther
    })
  })

  it.each([
    { change: { ip: false, port: true }, from: 1 },
    { change: { ip: true, port: false }, from: 2 },
    { change: { ip: true, port: true }, from: 3 }
  ])('answers CHANGE-REQUEST $change from the address asked for', async ({ change, from }) => {
    const stun = await server({ alternateAddress: '127.0.0.2' })
    const client = new StunClient(await socketOn('127.0.0.1'))
    const outcome = await client.binding(stun.addresses()[0] as Endpoint, WITHIN_2S, change)
    client.close()
    expect(outcome).toMatchObject({ from: stun.addresses()[from] })
  })

  it('refuses "change IP" with 420 when it has no alternate IP, and names its other port', async () => {
    const stun = await server()
    const client = new StunClient(await socketOn('127.0.0.1'))
    const [primary, other] = stun.addresses()
    expect(await client.binding(primary as Endpoint, WITHIN_2S, { ip: true, port: true })).toEqual({ refused: 420 })
    expect(await client.binding(primary as Endpoint, WITHIN_2S)).toMatchObject({ other })
    client.close()
  })

  it('keeps answering valid requests through 10,000 random and truncated packets, counting them as malformed', async () => {
    const stun = await server()
    const target = stun.addresses()[0] as Endpoint
    const junkSocket = await socketOn('127.0.0.1')
    // valid requests come from another source IP, so the junk source's rate limit cannot be what they meet
    const client = new StunClient(await socketOn('127.0.0.3'))
    const valid = bindingRequest(randomBytes(12))
    const junk = (i: number): Buffer => {
      switch (i % 4) {
        case 0: return randomBytes(i % 700)
        case 1: return valid.subarray(0, i % valid.length) // truncated
        case 2: { // a STUN header that claims the right length, random attributes behind it
          const body = randomBytes(4 * (1 + i % 40))
          const header = Buffer.from(valid.subarray(0, 20))
          header.writeUInt16BE(body.length, 2)
          return Buffer.concat([header, body])
        }
        default: { // a valid request whose length field lies
          const lying = Buffer.from(valid)
          lying.writeUInt16BE((i * 4) % 1024 + 4, 2)
          return lying
        }
      }
    }
    const JUNK = 10_000
    const BATCH = 50
    let answered = 0
    // in small batches, each followed by a valid request: a burst larger than the socket buffers would be lost
    // on loopback before the server could count it
    for (let sent = 0; sent < JUNK; sent += BATCH) {
      for (let i = sent; i < sent + BATCH; i++) junkSocket.send(junk(i), target.port, target.address)
      const outcome = await client.binding(target, WITHIN_2S)
      if ('mapped' in outcome) answered++
    }
    expect(answered).toBe(JUNK / BATCH)
    // loopback may drop a few datagrams when the 2-core machine is busy; every junk packet that arrived was counted
    await waitFor(() => stun.stats().malformed >= JUNK * 0.95, 5000, 'junk to be counted')
    expect(stun.stats().malformed).toBeLessThanOrEqual(JUNK)
    // a request answered late (a busy machine) is retransmitted by the client, and the copy is counted too
    expect(stun.stats().requests).toBeGreaterThanOrEqual(answered)
    client.close()
  })

  it('limits each source IP to its burst plus the refill rate, and other IPs are unaffected', async () => {
    const stun = await server({ ratePerSecond: 100, burst: 200 })
    const target = stun.addresses()[0] as Endpoint
    const flooder = await socketOn('127.0.0.4')
    let answers = 0
    flooder.on('message', () => { answers++ })
    const started = performance.now()
    const SENT = 1000
    for (let sent = 0; sent < SENT; sent += 20) {
      for (let i = 0; i < 20; i++) flooder.send(bindingRequest(randomBytes(12)), target.port, target.address)
      await new Promise(resolve => setTimeout(resolve, 1))
    }
    // another source IP meanwhile gets its answer
    const bystander = new StunClient(await socketOn('127.0.0.5'))
    expect(await bystander.binding(target, WITHIN_2S)).toMatchObject({ mapped: { address: '127.0.0.5' } })
    bystander.close()
    await waitFor(() => stun.stats().requests + stun.stats().rateLimited >= SENT * 0.95 + 1, 5000, 'the flood to be processed')
    const elapsedS = (performance.now() - started) / 1000
    const flood = stun.stats().requests - 1
    // the bucket starts full (200) and refills at 100/s for as long as the flood lasted; +5 for timer slack
    expect(flood).toBeGreaterThanOrEqual(200 * 0.95)
    expect(flood).toBeLessThanOrEqual(200 + 100 * elapsedS + 5)
    expect(stun.stats().rateLimited).toBeGreaterThan(SENT - 200 - 100 * elapsedS - 5 - SENT * 0.05)
    await waitFor(() => answers >= flood, 2000, 'answers to arrive')
  })
})
