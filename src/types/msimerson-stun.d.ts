// @msimerson/stun ships no type declarations; these cover the part natmesh uses (codec, client request, server socket).
declare module '@msimerson/stun' {
  import type { Socket } from 'node:dgram'
  import { EventEmitter } from 'node:events'

  export interface StunAddress { address: string, port: number, family: 'IPv4' | 'IPv6' }

  export class StunAttribute {
    readonly type: number
    readonly value: unknown
  }

  export class StunMessage {
    readonly type: number
    readonly transactionId: Buffer
    readonly count: number
    isLegacy (): boolean
    getAttribute (type: number): StunAttribute | undefined
    hasAttribute (type: number): boolean
    getXorAddress (): StunAddress | undefined
    [Symbol.iterator] (): Iterator<StunAttribute>
  }

  export class StunRequest extends StunMessage {
    setType (type: number): void
    setTransactionId (transactionId: Buffer): boolean
    addAttribute (type: number, ...values: unknown[]): StunAttribute | undefined
    addUsername (username: string): StunAttribute | undefined
    addRealm (realm: string): StunAttribute | undefined
    addNonce (nonce: string): StunAttribute | undefined
    addXorAddress (address: string, port: number): StunAttribute | undefined
    addError (code: number, reason?: string): StunAttribute | undefined
    addSoftware (software: string): StunAttribute | undefined
    addMessageIntegrity (key: string | Buffer): boolean
    addFingerprint (): boolean
    toBuffer (): Buffer
  }

  export class StunResponse extends StunMessage {
    getError (): { code: number, reason: string } | undefined
    getRealm (): string | undefined
    getNonce (): string | undefined
  }

  export class StunServer extends EventEmitter {
    send (message: StunRequest, port: number, address: string, callback?: (err: Error | null) => void): boolean
    close (): void
  }

  export class StunError extends Error {
    readonly packet: unknown
    readonly sender: unknown
  }

  /** an error response; `packet` is the decoded StunResponse */
  export class StunResponseError extends StunError {
    readonly packet: StunResponse
    readonly code?: number
  }

  export interface RequestOptions {
    server?: StunServer
    socket?: Socket
    message?: StunRequest
    /** initial retransmission timeout, ms (default 500) */
    timeout?: number
    maxTimeout?: number
    /** default 6 */
    retries?: number
  }

  export function createMessage (type: number, transaction?: Buffer): StunRequest
  export function createServer (options: { type: 'udp4' | 'udp6', socket?: Socket }): StunServer
  /** sends `options.message` (default a Binding request) with retransmissions; rejects with a StunResponseError on an error response */
  export function request (url: string, options?: RequestOptions): Promise<StunResponse>
  /** @throws on anything that is not a well-formed STUN message */
  export function decode (message: Buffer): StunResponse
  export function encode (message: StunMessage): Buffer
  export function validateMessageIntegrity (message: StunMessage, key: string | Buffer): boolean
  export function validateFingerprint (message: StunMessage): boolean

  export const constants: Record<string, number>

  const stun: {
    createMessage: typeof createMessage
    createServer: typeof createServer
    request: typeof request
    decode: typeof decode
    encode: typeof encode
    validateMessageIntegrity: typeof validateMessageIntegrity
    validateFingerprint: typeof validateFingerprint
    StunResponseError: typeof StunResponseError
    constants: Record<string, number>
  }
  export default stun
}
