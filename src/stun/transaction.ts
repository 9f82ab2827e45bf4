import { createSocket } from 'node:dgram'
import { isIPv6 } from 'node:net'
import stun from '@msimerson/stun'
import type { Socket } from 'node:dgram'
import type { StunRequest, StunResponse } from '@msimerson/stun'

export interface TransactionOptions {
  /** first retransmission timeout; it doubles per retransmission (RFC 8489 §6.2.1) */
  rtoMs: number
  /** retransmissions after the first send */
  retransmissions: number
  signal?: AbortSignal
}

/** No response within the retransmission schedule */
export class StunTimeoutError extends Error {
  constructor (message: string) {
    super(message)
    this.name = 'StunTimeoutError'
  }
}

/**
 * One STUN client transaction over UDP: sends `request`, retransmits on the RFC 8489 schedule, and resolves with
 * the first response (success or error) carrying its transaction id. @msimerson/stun encodes and decodes the
 * messages; its own `request()` only takes host names from URLs (no IPv6 literals) and turns error responses
 * into exceptions without the message, so the transaction loop is ours.
 */
export async function stunTransaction (socket: Socket, request: StunRequest, host: string, port: number, options: TransactionOptions): Promise<StunResponse> {
  const bytes = request.toBuffer()

  return new Promise<StunResponse>((resolve, reject) => {
    let sent = 0
    let timer: NodeJS.Timeout | undefined
    const finish = (err: Error | undefined, response?: StunResponse): void => {
      clearTimeout(timer)
      socket.off('message', onMessage)
      socket.off('error', onError)
      options.signal?.removeEventListener('abort', onAbort)
      if (err != null) reject(err)
      else resolve(response as StunResponse)
    }
    const onMessage = (message: Buffer): void => {
      let response: StunResponse
      try {
        response = stun.decode(message)
      } catch {
        return // not STUN, or malformed: wait for the real answer
      }
      if (response.transactionId.equals(request.transactionId)) finish(undefined, response)
    }
    const onError = (err: Error): void => { finish(err) }
    const onAbort = (): void => { finish(options.signal?.reason instanceof Error ? options.signal.reason : new Error('aborted')) }
    const send = (): void => {
      if (sent > options.retransmissions) {
        finish(new StunTimeoutError(`no STUN response from ${host}:${port} after ${sent} attempts`))
        return
      }
      socket.send(bytes, port, host)
      timer = setTimeout(send, options.rtoMs * 2 ** sent)
      sent++
    }

    if (options.signal?.aborted === true) {
      onAbort()
      return
    }
    socket.on('message', onMessage)
    socket.on('error', onError)
    options.signal?.addEventListener('abort', onAbort, { once: true })
    send()
  })
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

/** true when a STUN server answers a Binding request at host:port */
export async function answersStunBinding (host: string, port: number, options: TransactionOptions): Promise<boolean> {
  const socket = await openStunSocket(host)
  try {
    const response = await stunTransaction(socket, stun.createMessage(stun.constants.STUN_BINDING_REQUEST as number), host, port, options)
    return response.type === stun.constants.STUN_BINDING_RESPONSE
  } catch {
    return false
  } finally {
    socket.close()
  }
}
