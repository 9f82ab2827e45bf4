import { randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { createSocket } from 'node:dgram'
import type { Socket } from 'node:dgram'
import { afterEach, describe, expect, it } from 'vitest'
import { bindingRequest, bindingResponse, parseBindingRequest } from '../../src/stun/codec.js'
import type { Endpoint } from '../../src/stun/codec.js'
import { StunTransactionError } from '../../src/stun/errors.js'
import { retransmitWithin, schedule, StunTransactions } from '../../src/stun/transaction.js'

const sockets: Socket[] = []

async function bound (): Promise<Socket> {
  const socket = createSocket('udp4')
  sockets.push(socket)
  socket.bind(0, '127.0.0.1')
  await once(socket, 'listening')
  return socket
}

function endpointOf (socket: Socket): Endpoint {
  const { address, port } = socket.address()
  return { address, port }
}

interface Responder {
  at: Endpoint
  /** the transaction id of every Binding request, in order */
  received: Buffer[]
  /** resolves once every datagram `from` sent before now has arrived (loopback keeps one socket's order) */
  drained: (from: Socket) => Promise<void>
}

/** a STUN server that drops the first `drop` requests it gets, and records every one */
async function responder (drop: number): Promise<Responder> {
  const socket = await bound()
  const received: Buffer[] = []
  const at = endpointOf(socket)
  const drained = async (from: Socket): Promise<void> => {
    const marker = once(socket, 'marker')
    from.send('marker', at.port, at.address)
    await marker
  }
  socket.on('message', (datagram, rinfo) => {
    if (datagram.toString() === 'marker') socket.emit('marker')
    const request = parseBindingRequest(datagram)
    if (request == null) return
    received.push(request.transactionId)
    if (received.length <= drop) return
    socket.send(bindingResponse({ transactionId: request.transactionId, mapped: { address: rinfo.address, port: rinfo.port } }), rinfo.port, rinfo.address)
  })
  return { at, received, drained }
}

afterEach(() => {
  for (const socket of sockets.splice(0)) socket.close()
})

describe('STUN transaction engine', () => {
  it('retransmits the same transaction until a request gets through', async () => {
    const server = await responder(2)
    const client = await bound()
    const transactions = new StunTransactions(client)
    const id = randomBytes(12)
    // three requests at most: the third is the last one there is, so it is the one answered
    const { message, from } = await transactions.request({ bytes: bindingRequest(id), to: server.at, policy: { rtoMs: 100, retransmissions: 2 } })
    expect(message.transactionId).toEqual(id)
    expect(from).toEqual(server.at)
    await server.drained(client)
    expect(server.received).toEqual([id, id, id])
    transactions.close()
  })

  it('times out with ERR_STUN_TIMEOUT after the first request and every retransmission went unanswered', async () => {
    const server = await responder(Infinity)
    const client = await bound()
    const transactions = new StunTransactions(client)
    const err = await transactions.request({ bytes: bindingRequest(randomBytes(12)), to: server.at, policy: { rtoMs: 10, retransmissions: 2 } }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StunTransactionError)
    expect(err).toHaveProperty('code', 'ERR_STUN_TIMEOUT')
    await server.drained(client)
    expect(server.received).toHaveLength(3)
    transactions.close()
  })

  it('matches answers by transaction id and ignores everything else on the socket', async () => {
    const client = await bound()
    const transactions = new StunTransactions(client)
    const id = randomBytes(12)
    // a server answering with a stranger's transaction id and garbage first, then the real answer
    const server = await bound()
    server.on('message', (_datagram, rinfo) => {
      server.send(Buffer.from('not stun'), rinfo.port, rinfo.address)
      server.send(bindingResponse({ transactionId: randomBytes(12), mapped: { address: '11.0.0.1', port: 1 } }), rinfo.port, rinfo.address)
      server.send(bindingResponse({ transactionId: id, mapped: { address: '11.0.0.2', port: 2 } }), rinfo.port, rinfo.address)
    })
    const { message } = await transactions.request({ bytes: bindingRequest(id), to: endpointOf(server), policy: { rtoMs: 500, retransmissions: 0 } })
    expect(message.getXorAddress()).toMatchObject({ address: '11.0.0.2', port: 2 })
    transactions.close()
  })

  it('ends what is in flight with ERR_STUN_ABORTED on close and on abort', async () => {
    const server = await responder(Infinity)
    const transactions = new StunTransactions(await bound())
    const policy = { rtoMs: 1000, retransmissions: 6 }
    const closed = transactions.request({ bytes: bindingRequest(randomBytes(12)), to: server.at, policy }).catch((e: unknown) => e)
    transactions.close()
    expect(await closed).toHaveProperty('code', 'ERR_STUN_ABORTED')

    const other = new StunTransactions(await bound())
    const controller = new AbortController()
    const aborted = other.request({ bytes: bindingRequest(randomBytes(12)), to: server.at, policy: { ...policy, signal: controller.signal } }).catch((e: unknown) => e)
    controller.abort()
    expect(await aborted).toHaveProperty('code', 'ERR_STUN_ABORTED')
    other.close()
  })
})

describe('retransmission schedule', () => {
  it('doubles the RTO after every request and, by default, waits the doubled RTO after the last', () => {
    expect(schedule({ rtoMs: 500, retransmissions: 2 })).toEqual({ requestsAt: [0, 500, 1500], timeoutAt: 3500 })
    expect(schedule({ rtoMs: 100, retransmissions: 0 })).toEqual({ requestsAt: [0], timeoutAt: 100 })
  })

  it('is RFC 8489 §6.2.1 with Rc = 7 and Rm = 16', () => {
    // the RFC's own example: requests at 0, 500, 1500, 3500, 7500, 15500 and 31500 ms, failure at 39500 ms
    expect(schedule({ rtoMs: 500, retransmissions: 6, lastWaitRtos: 16 })).toEqual({ requestsAt: [0, 500, 1500, 3500, 7500, 15500, 31500], timeoutAt: 39500 })
  })

  it('fits retransmissions into a deadline and gives up at it', () => {
    expect(schedule(retransmitWithin(1500))).toEqual({ requestsAt: [0, 200, 600, 1400], timeoutAt: 1500 })
    expect(schedule(retransmitWithin(150))).toEqual({ requestsAt: [0], timeoutAt: 150 })
  })
})
