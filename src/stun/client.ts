import { randomBytes } from 'node:crypto'
import type { RemoteInfo, Socket } from 'node:dgram'
import { bindingRequest, parseBindingRequest, parseBindingResponse } from './codec.js'
import type { ChangeRequest, Endpoint } from './codec.js'

export interface BindingResult {
  mapped: Endpoint
  /** where the response came from (the UDP source, which is what a NAT filters on) */
  from: Endpoint
  other?: Endpoint
}

export type BindingOutcome = BindingResult | { refused: number } | undefined

interface Pending { resolve: (outcome: BindingOutcome) => void, hairpin: boolean }

/** first retransmission after this; each next one waits twice as long (RFC 8489 §6.2.1 with a shorter RTO) */
const FIRST_RETRANSMIT_MS = 200

/**
 * STUN Binding transactions over one UDP socket: retransmits until `timeoutMs`, matches answers by transaction id
 * and ignores everything else arriving on the socket (so the socket may carry other traffic too).
 */
export class StunClient {
  private readonly socket: Socket
  private readonly pending = new Map<string, Pending>()
  private closed = false
  private readonly onMessage = (datagram: Buffer, rinfo: RemoteInfo): void => { this.receive(datagram, rinfo) }

  constructor (socket: Socket) {
    this.socket = socket
    socket.on('message', this.onMessage)
  }

  /** Resolves with the mapping the server saw, `{ refused }` on an error response, undefined on timeout */
  async binding (to: Endpoint, timeoutMs: number, change?: ChangeRequest): Promise<BindingOutcome> {
    return this.transact(to, timeoutMs, false, change)
  }

  /** Sends a Binding request to our own public address: true when it comes back to this socket */
  async hairpins (publicAddress: Endpoint, timeoutMs: number): Promise<boolean> {
    return (await this.transact(publicAddress, timeoutMs, true)) != null
  }

  /** Ends every transaction (they resolve undefined) and any later one at once */
  close (): void {
    this.closed = true
    this.socket.off('message', this.onMessage)
    for (const { resolve } of this.pending.values()) resolve(undefined)
    this.pending.clear()
  }

  private async transact (to: Endpoint, timeoutMs: number, hairpin: boolean, change?: ChangeRequest): Promise<BindingOutcome> {
    if (this.closed) return undefined
    const transactionId = randomBytes(12)
    const key = transactionId.toString('hex')
    const request = bindingRequest(transactionId, change)
    return new Promise<BindingOutcome>((resolve) => {
      const timers: NodeJS.Timeout[] = []
      const finish = (outcome: BindingOutcome): void => {
        for (const timer of timers) clearTimeout(timer)
        this.pending.delete(key)
        resolve(outcome)
      }
      this.pending.set(key, { resolve: finish, hairpin })
      for (let at = 0, gap = FIRST_RETRANSMIT_MS; at < timeoutMs; at += gap, gap *= 2) {
        timers.push(setTimeout(() => { this.send(request, to) }, at))
      }
      timers.push(setTimeout(() => { finish(undefined) }, timeoutMs))
    })
  }

  private send (datagram: Buffer, to: Endpoint): void {
    try {
      this.socket.send(datagram, to.port, to.address, () => {
        // a send error (no route, socket closed) is a lost request: the timeout reports it
      })
    } catch {
      // the socket was closed under us: same as a lost request
    }
  }

  private receive (datagram: Buffer, rinfo: RemoteInfo): void {
    const from = { address: rinfo.address, port: rinfo.port }
    const response = parseBindingResponse(datagram)
    if (response != null) {
      const pending = this.pending.get(response.transactionId.toString('hex'))
      if (pending == null || pending.hairpin) return
      pending.resolve(response.kind === 'error'
        ? { refused: response.code }
        : { mapped: response.mapped, from, ...(response.other != null ? { other: response.other } : {}) })
      return
    }
    // our own hairpinned request arrives as a request
    const request = parseBindingRequest(datagram)
    const pending = request == null ? undefined : this.pending.get(request.transactionId.toString('hex'))
    if (pending?.hairpin === true) pending.resolve({ mapped: from, from })
  }
}
