import { createSocket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import type { RemoteInfo, Socket } from 'node:dgram'
import type { StunResponse } from '@msimerson/stun'
import { decodeStun, messageClass, transactionKey } from './codec.js'
import { formatEndpoint } from './endpoint.js'
import type { Endpoint } from './codec.js'
import { StunTransactionError } from './errors.js'

/**
 * The retransmission schedule of a client transaction (RFC 8489 §6.2.1): the first request, then one after each
 * RTO, the RTO doubling every time, `retransmissions` of them at most (Rc - 1); after the last one the transaction
 * waits `lastWaitRtos` initial RTOs (Rm) and times out.
 */
export interface RetransmitPolicy {
  /** RTO: the wait after the first request */
  rtoMs: number
  /** Rc - 1: requests sent after the first, at most */
  retransmissions: number
  /** Rm; default 2 ** retransmissions, so the last wait doubles like the others (RFC 8489 proposes 16 for Rc = 7) */
  lastWaitRtos?: number
  signal?: AbortSignal
}

/** RFC 8489's shortest sensible RTO for a LAN or a known-fast path; NAT tests use it to fit retransmissions in */
const DEADLINE_RTO_MS = 200

/**
 * A schedule that gives up `timeoutMs` after the first request and retransmits as often as fits in before
 * (at 200, 600, 1400 ms, ...): what NAT tests use, whose budget is one wait per test.
 */
export function retransmitWithin (timeoutMs: number, rtoMs = DEADLINE_RTO_MS): RetransmitPolicy {
  let retransmissions = 0
  while (rtoMs * (2 ** (retransmissions + 1) - 1) < timeoutMs) retransmissions++
  const lastRequestAt = rtoMs * (2 ** retransmissions - 1)
  return { rtoMs, retransmissions, lastWaitRtos: Math.max(0, timeoutMs - lastRequestAt) / rtoMs }
}

/** When each request goes out and when the transaction times out, in ms after the first request */
export function schedule (policy: RetransmitPolicy): { requestsAt: number[], timeoutAt: number } {
  const requestsAt = Array.from({ length: policy.retransmissions + 1 }, (_, k) => policy.rtoMs * (2 ** k - 1))
  const lastWaitRtos = policy.lastWaitRtos ?? 2 ** policy.retransmissions
  return { requestsAt, timeoutAt: (requestsAt.at(-1) ?? 0) + lastWaitRtos * policy.rtoMs }
}

/** the answer to a transaction, and the UDP source it came from (what a NAT filters on) */
export interface StunAnswer { message: StunResponse, from: Endpoint }

export interface TransactionRequest {
  /** an encoded STUN request; its transaction id is what answers are matched by */
  bytes: Buffer
  to: Endpoint
  policy: RetransmitPolicy
  /** what counts as the answer: a response (success or error, the default), or the request itself coming back (hairpin tests) */
  expect?: 'response' | 'request'
}

interface Pending {
  expect: 'response' | 'request'
  answer: (answer: StunAnswer) => void
  fail: (err: StunTransactionError) => void
}

/**
 * STUN client transactions over one UDP socket, any number at once: each retransmits on its schedule, and ends
 * with the first message carrying its transaction id, or a StunTransactionError (code ERR_STUN_TIMEOUT when the
 * schedule ran out). Everything else arriving on the socket is ignored, so the socket may carry other traffic.
 */
export class StunTransactions {
  private readonly pending = new Map<string, Pending>()
  private closed = false
  private readonly onMessage = (datagram: Buffer, rinfo: RemoteInfo): void => { this.receive(datagram, rinfo) }
  /** a socket error ends what is in flight instead of crashing the process */
  private readonly onError = (err: Error): void => { this.failAll(new StunTransactionError('ERR_STUN_SEND', `STUN socket error: ${err.message}`, { cause: err })) }

  constructor (private readonly socket: Socket) {
    socket.on('message', this.onMessage)
    socket.on('error', this.onError)
  }

  /**
   * @throws {StunTransactionError} ERR_STUN_TIMEOUT without an answer, ERR_STUN_ABORTED when the signal fires or
   * the engine closes, ERR_STUN_SEND when the socket cannot send
   */
  async request ({ bytes, to, policy, expect = 'response' }: TransactionRequest): Promise<StunAnswer> {
    if (this.closed) throw new StunTransactionError('ERR_STUN_ABORTED', 'STUN transactions closed')
    const { signal } = policy
    if (signal?.aborted === true) throw new StunTransactionError('ERR_STUN_ABORTED', 'STUN transaction aborted', { cause: signal.reason })
    const key = transactionKey(bytes)
    const { requestsAt, timeoutAt } = schedule(policy)

    return new Promise<StunAnswer>((resolve, reject) => {
      const timers: NodeJS.Timeout[] = []
      const done = (): void => {
        for (const timer of timers) clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
        this.pending.delete(key)
      }
      const fail = (err: StunTransactionError): void => { done(); reject(err) }
      const onAbort = (): void => { fail(new StunTransactionError('ERR_STUN_ABORTED', 'STUN transaction aborted', { cause: signal?.reason })) }
      this.pending.set(key, { expect, answer: (answer) => { done(); resolve(answer) }, fail })
      signal?.addEventListener('abort', onAbort, { once: true })
      for (const at of requestsAt) timers.push(setTimeout(() => { this.send(bytes, to, key) }, at))
      timers.push(setTimeout(() => {
        fail(new StunTransactionError('ERR_STUN_TIMEOUT', `no STUN response from ${formatEndpoint(to)} after ${requestsAt.length} attempts`))
      }, timeoutAt))
    })
  }

  /** Ends every transaction (ERR_STUN_ABORTED) and refuses later ones; the socket stays open */
  close (): void {
    this.closed = true
    this.socket.off('message', this.onMessage)
    this.socket.off('error', this.onError)
    this.failAll(new StunTransactionError('ERR_STUN_ABORTED', 'STUN transactions closed'))
  }

  private failAll (err: StunTransactionError): void {
    for (const { fail } of [...this.pending.values()]) fail(err)
  }

  private send (bytes: Buffer, to: Endpoint, key: string): void {
    const failed = (err: Error): void => {
      this.pending.get(key)?.fail(new StunTransactionError('ERR_STUN_SEND', `cannot send a STUN request to ${formatEndpoint(to)}: ${err.message}`, { cause: err }))
    }
    try {
      this.socket.send(bytes, to.port, to.address, (err) => { if (err != null) failed(err) })
    } catch (err) {
      failed(err as Error) // the socket was closed under us
    }
  }

  private receive (datagram: Buffer, rinfo: RemoteInfo): void {
    const message = decodeStun(datagram)
    if (message == null) return
    const pending = this.pending.get(message.transactionId.toString('hex'))
    if (pending == null) return
    const isRequest = messageClass(message.type) === 'request'
    if (isRequest === (pending.expect === 'request')) pending.answer({ message, from: { address: rinfo.address, port: rinfo.port } })
  }
}

/** A UDP socket of the right family for talking to `host`, bound to an ephemeral port */
export async function openStunSocket (host: string): Promise<Socket> {
  const socket = createSocket(isIPv6(host) ? 'udp6' : 'udp4')
  await new Promise<void>((resolve, reject) => {
    socket.once('error', reject)
    socket.bind(0, () => { socket.off('error', reject); resolve() })
  })
  return socket
}
