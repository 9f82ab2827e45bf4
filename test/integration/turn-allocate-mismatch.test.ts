import { createHash } from 'node:crypto'
import { createSocket } from 'node:dgram'
import type { RemoteInfo, Socket } from 'node:dgram'
import stun from '@msimerson/stun'
import type { StunRequest } from '@msimerson/stun'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { TurnAllocation, TurnAllocationError } from '../../src/turn/client/allocate.js'

const { constants } = stun
const USERNAME = 'alice'
const CREDENTIAL = 'secret'
const REALM = 'natmesh.test'
const NONCE = 'nonce-1'
const KEY = createHash('md5').update(`${USERNAME}:${REALM}:${CREDENTIAL}`).digest()
const POLICY = { rtoMs: 100, retransmissions: 2 }

/**
 * The TURN side of RFC 8656 written out by hand: a 401 challenge to an unauthenticated Allocate, an allocation
 * to an authenticated one, and a 437 (Allocation Mismatch) to any request from a source port listed as still
 * holding an allocation, as coturn answers a reused 5-tuple ("Mismatched allocation: wrong transaction ID").
 */
class HandWrittenTurn {
  readonly socket: Socket = createSocket('udp4')
  /** client ports the server answers with 437 */
  readonly heldPorts = new Set<number>()
  /** the source port of every Allocate, in order */
  readonly allocateFrom: number[] = []

  async start (): Promise<number> {
    this.socket.on('message', (datagram: Buffer, from: RemoteInfo) => { this.answer(datagram, from) })
    await new Promise<void>(resolve => this.socket.bind(0, '127.0.0.1', resolve))
    return this.socket.address().port
  }

  private answer (datagram: Buffer, from: RemoteInfo): void {
    const request = stun.decode(datagram)
    if (request.type !== constants.STUN_ALLOCATE_REQUEST) return
    this.allocateFrom.push(from.port)
    const reply = (type: number, fill: (message: StunRequest) => void): void => {
      const message = stun.createMessage(type, request.transactionId)
      fill(message)
      this.socket.send(message.toBuffer(), from.port, from.address)
    }
    if (this.heldPorts.has(from.port)) {
      reply(constants.STUN_ALLOCATE_ERROR_RESPONSE as number, m => m.addError(437, 'Mismatched allocation: wrong transaction ID'))
    } else if (request.getAttribute(constants.STUN_ATTR_MESSAGE_INTEGRITY as number) == null) {
      reply(constants.STUN_ALLOCATE_ERROR_RESPONSE as number, m => { m.addError(401, 'Unauthorized'); m.addRealm(REALM); m.addNonce(NONCE) })
    } else {
      reply(constants.STUN_ALLOCATE_RESPONSE as number, m => {
        m.addAttribute(constants.STUN_ATTR_XOR_RELAYED_ADDRESS as number, '127.0.0.1', 50_000)
        m.addMessageIntegrity(KEY)
      })
    }
  }
}

describe('TURN Allocate from a 5-tuple the server still holds (437 Allocation Mismatch)', () => {
  let turn: HandWrittenTurn
  let port: number

  beforeEach(async () => {
    turn = new HandWrittenTurn()
    port = await turn.start()
  })

  afterEach(() => { turn.socket.close() })

  const endpoint = (): { host: string, port: number, username: string, credential: string } =>
    ({ host: '127.0.0.1', port, username: USERNAME, credential: CREDENTIAL })

  it('allocates from another local port, as RFC 8656 §7.2 has the client do', async () => {
    // the first port the client uses is unknown until it sends: refuse whatever port comes first
    turn.socket.prependListener('message', (_datagram: Buffer, from: RemoteInfo) => {
      if (turn.allocateFrom.length === 0) turn.heldPorts.add(from.port)
    })
    const allocation = await TurnAllocation.open(endpoint(), POLICY)
    try {
      expect(allocation.relayedAddress).toMatchObject({ address: '127.0.0.1', port: 50_000 })
      // refused port, then the challenge and the authenticated Allocate from one new port
      expect(turn.allocateFrom).toHaveLength(3)
      const [refused, challenged, allocated] = turn.allocateFrom
      expect(challenged).not.toBe(refused)
      expect(allocated).toBe(challenged)
    } finally {
      allocation.close()
    }
  })

  it('gives up with the 437 after two fresh ports are refused too', async () => {
    turn.socket.prependListener('message', (_datagram: Buffer, from: RemoteInfo) => { turn.heldPorts.add(from.port) })
    const refused = await TurnAllocation.open(endpoint(), POLICY).then(() => undefined, (err: unknown) => err)
    expect(refused).toBeInstanceOf(TurnAllocationError)
    expect(refused).toMatchObject({ code: 437 })
    expect(new Set(turn.allocateFrom).size).toBe(3)
  })
})
