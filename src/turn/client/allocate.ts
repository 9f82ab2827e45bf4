import { createHash } from 'node:crypto'
import stun from '@msimerson/stun'
import type { Socket } from 'node:dgram'
import type { StunAddress, StunRequest, StunResponse } from '@msimerson/stun'
import { messageClass } from '../../stun/codec.js'
import { openStunSocket, StunTransactions } from '../../stun/transaction.js'
import type { RetransmitPolicy } from '../../stun/transaction.js'

/** A TURN server and the long-term credential to use it with */
export interface TurnEndpoint {
  host: string
  port: number
  username: string
  credential: string
}

export interface AllocationProbe {
  /** the relayed transport address coturn allocated */
  relayedAddress: StunAddress
  /** from the first Allocate request to the allocation (both round trips of the long-term credential dance) */
  latencyMs: number
}

/** The server answered with an error: 401 for a refused credential, 437 for an allocation it no longer has, ... */
export class TurnAllocationError extends Error {
  readonly code: number

  constructor (code: number, reason: string, request = 'Allocate') {
    super(`TURN ${request} refused: ${code} ${reason}`)
    this.name = 'TurnAllocationError'
    this.code = code
  }
}

const { constants } = stun
/** REQUESTED-TRANSPORT carries the protocol number in its first byte: 17, UDP (RFC 8656 §18.7) */
const REQUESTED_TRANSPORT_UDP = 17 << 24
const UNAUTHORIZED = 401
const STALE_NONCE = 438
const ALLOCATION_MISMATCH = 437
/** fresh ports tried after a 437 before giving up */
const MISMATCH_RETRIES = 2

/**
 * Proves a TURN server works end to end, the way an ICE agent uses it: an Allocate, the 401 challenge (realm and
 * nonce), the authenticated Allocate with MESSAGE-INTEGRITY over the long-term key, then a Refresh with lifetime 0
 * so the allocation is released at once instead of holding a relay port for 10 minutes.
 * @throws {TurnAllocationError} when the server refuses (e.g. 401: the credential is wrong or expired)
 * @throws {StunTransactionError} when it does not answer (ERR_STUN_TIMEOUT)
 */
export async function probeTurnAllocation (endpoint: TurnEndpoint, options: RetransmitPolicy): Promise<AllocationProbe> {
  const allocation = await TurnAllocation.open(endpoint, options)
  try {
    await allocation.refresh(0)
    return { relayedAddress: allocation.relayedAddress, latencyMs: allocation.latencyMs }
  } finally {
    allocation.close()
  }
}

/** A UDP allocation on a TURN server, held on its own socket, and the requests an allocation takes */
export class TurnAllocation implements AllocationProbe {
  private constructor (
    private readonly socket: Socket,
    private readonly transactions: StunTransactions,
    private readonly endpoint: TurnEndpoint,
    private readonly auth: LongTermAuth,
    private readonly options: RetransmitPolicy,
    readonly relayedAddress: StunAddress,
    readonly latencyMs: number
  ) {}

  /**
   * An allocation from a fresh UDP port. A 437 (Allocation Mismatch) means the server still holds an allocation
   * for that 5-tuple: another client's, or one of ours released moments ago whose port the kernel handed out
   * again. RFC 8656 §7.2 has the client try another transport address, so we do, from a port we open before
   * closing the refused one (the kernel cannot hand the same one back).
   * @throws {TurnAllocationError} when the server refuses the Allocate
   * @throws {StunTransactionError} when it does not answer (ERR_STUN_TIMEOUT)
   */
  static async open (endpoint: TurnEndpoint, options: RetransmitPolicy): Promise<TurnAllocation> {
    let socket = await openStunSocket(endpoint.host)
    for (let tried = 0; ; tried++) {
      try {
        return await TurnAllocation.allocateFrom(socket, endpoint, options)
      } catch (err) {
        const mismatch = err instanceof TurnAllocationError && err.code === ALLOCATION_MISMATCH && tried < MISMATCH_RETRIES
        const refused = socket
        if (mismatch) socket = await openStunSocket(endpoint.host)
        refused.close()
        if (!mismatch) throw err
      }
    }
  }

  private static async allocateFrom (socket: Socket, endpoint: TurnEndpoint, options: RetransmitPolicy): Promise<TurnAllocation> {
    const transactions = new StunTransactions(socket)
    const send = async (request: StunRequest): Promise<StunResponse> => transact(transactions, endpoint, request, options)
    try {
      const started = performance.now()
      const challenge = await send(allocateRequest())
      const auth = authFrom(challenge, endpoint)
      let allocation = await send(authenticated(allocateRequest(), endpoint, auth))

      // a nonce may go stale between the challenge and our answer: the error carries a fresh one (RFC 8489 §9.2.4)
      if (errorOf(allocation)?.code === STALE_NONCE) {
        auth.nonce = allocation.getNonce() ?? auth.nonce
        allocation = await send(authenticated(allocateRequest(), endpoint, auth))
      }

      const refused = errorOf(allocation)
      if (refused != null) throw new TurnAllocationError(refused.code, refused.reason)
      if (!stun.validateMessageIntegrity(allocation, auth.key)) throw new Error('TURN Allocate response failed its MESSAGE-INTEGRITY check')
      const relayedAddress = allocation.getAttribute(constants.STUN_ATTR_XOR_RELAYED_ADDRESS as number)?.value as StunAddress | undefined
      if (relayedAddress == null) throw new Error('TURN Allocate response has no XOR-RELAYED-ADDRESS')
      return new TurnAllocation(socket, transactions, endpoint, auth, options, relayedAddress, performance.now() - started)
    } catch (err) {
      transactions.close()
      throw err
    }
  }

  /** a Refresh: keeps the allocation `lifetimeSeconds` longer; 0 releases it */
  async refresh (lifetimeSeconds: number): Promise<void> {
    await this.request(() => {
      const request = stun.createMessage(constants.STUN_REFRESH_REQUEST as number)
      request.addAttribute(constants.STUN_ATTR_LIFETIME as number, lifetimeSeconds)
      return request
    }, 'Refresh')
  }

  /** a CreatePermission for a peer's IP, which lets its datagrams through the relay */
  async createPermission (peerIp: string): Promise<void> {
    await this.request(() => {
      const request = stun.createMessage(constants.STUN_CREATE_PERMISSION_REQUEST as number)
      request.addAttribute(constants.STUN_ATTR_XOR_PEER_ADDRESS as number, peerIp, 0)
      return request
    }, 'CreatePermission')
  }

  close (): void {
    this.transactions.close()
    this.socket.close()
  }

  private async request (build: () => StunRequest, name: string): Promise<void> {
    const send = async (): Promise<StunResponse> => transact(this.transactions, this.endpoint, authenticated(build(), this.endpoint, this.auth), this.options)
    let response = await send()
    if (errorOf(response)?.code === STALE_NONCE) {
      this.auth.nonce = response.getNonce() ?? this.auth.nonce
      response = await send()
    }
    const error = errorOf(response)
    if (error != null) throw new TurnAllocationError(error.code, error.reason, name)
  }
}

interface LongTermAuth {
  realm: string
  nonce: string
  /** MD5(username ":" realm ":" password), RFC 8489 §9.2.2 */
  key: Buffer
}

function allocateRequest (): StunRequest {
  const request = stun.createMessage(constants.STUN_ALLOCATE_REQUEST as number)
  request.addAttribute(constants.STUN_ATTR_REQUESTED_TRANSPORT as number, REQUESTED_TRANSPORT_UDP)
  return request
}

function authFrom (challenge: StunResponse, endpoint: TurnEndpoint): LongTermAuth {
  const error = errorOf(challenge)
  const realm = challenge.getRealm()
  const nonce = challenge.getNonce()

  if (error?.code !== UNAUTHORIZED || realm == null || nonce == null) {
    throw error != null ? new TurnAllocationError(error.code, error.reason) : new Error('TURN server allocated without asking for credentials')
  }

  const key = createHash('md5').update(`${endpoint.username}:${realm}:${endpoint.credential}`).digest()
  return { realm, nonce, key }
}

function authenticated (request: StunRequest, endpoint: TurnEndpoint, auth: LongTermAuth): StunRequest {
  request.addUsername(endpoint.username)
  request.addRealm(auth.realm)
  request.addNonce(auth.nonce)
  request.addMessageIntegrity(auth.key)
  request.addFingerprint()
  return request
}

async function transact (transactions: StunTransactions, endpoint: TurnEndpoint, request: StunRequest, policy: RetransmitPolicy): Promise<StunResponse> {
  const { message } = await transactions.request({ bytes: request.toBuffer(), to: { address: endpoint.host, port: endpoint.port }, policy })
  return message
}

function errorOf (response: StunResponse): { code: number, reason: string } | undefined {
  return messageClass(response.type) === 'error' ? response.getError() ?? { code: 0, reason: 'error response without ERROR-CODE' } : undefined
}
