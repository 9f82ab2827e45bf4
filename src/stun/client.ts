import { randomBytes } from 'node:crypto'
import type { Socket } from 'node:dgram'
import { bindingRequest, bindingResponseOf } from './codec.js'
import type { ChangeRequest, Endpoint } from './codec.js'
import { openStunSocket, StunTransactions } from './transaction.js'
import type { RetransmitPolicy } from './transaction.js'

export interface BindingResult {
  mapped: Endpoint
  /** where the response came from (the UDP source, which is what a NAT filters on) */
  from: Endpoint
  other?: Endpoint
}

/** the mapping the server saw, or `{ refused }` for an error response */
export type BindingOutcome = BindingResult | { refused: number }

/** STUN Binding requests over one UDP socket, on the shared transaction engine */
export class StunClient {
  private readonly transactions: StunTransactions

  constructor (socket: Socket) {
    this.transactions = new StunTransactions(socket)
  }

  /** @throws {StunTransactionError} without an answer (ERR_STUN_TIMEOUT), or once closed */
  async binding (to: Endpoint, policy: RetransmitPolicy, change?: ChangeRequest): Promise<BindingOutcome> {
    const { message, from } = await this.transactions.request({ bytes: bindingRequest(randomBytes(12), change), to, policy })
    const response = bindingResponseOf(message)
    if (response == null) throw new Error(`the STUN answer from ${from.address}:${from.port} is not a Binding response`)
    if (response.kind === 'error') return { refused: response.code }
    return { mapped: response.mapped, from, ...(response.other != null ? { other: response.other } : {}) }
  }

  /**
   * Sends a Binding request to our own public address: resolves when it comes back to this socket
   * @throws {StunTransactionError} when it does not (ERR_STUN_TIMEOUT: the NAT does not hairpin)
   */
  async hairpin (publicAddress: Endpoint, policy: RetransmitPolicy): Promise<void> {
    await this.transactions.request({ bytes: bindingRequest(randomBytes(12)), to: publicAddress, policy, expect: 'request' })
  }

  /** Ends every transaction (ERR_STUN_ABORTED) and any later one at once */
  close (): void {
    this.transactions.close()
  }
}

/** true when a STUN server answers a Binding request at host:port (a success or an error response alike) */
export async function answersStunBinding (host: string, port: number, policy: RetransmitPolicy): Promise<boolean> {
  const socket = await openStunSocket(host)
  const client = new StunClient(socket)
  try {
    return 'mapped' in await client.binding({ address: host, port }, policy)
  } catch {
    return false // no answer, or not one a STUN server gives
  } finally {
    client.close()
    socket.close()
  }
}
