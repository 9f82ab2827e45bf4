// @msimerson/stun ships no type declarations; these cover the codec part natmesh uses (not its client or server).
declare module '@msimerson/stun' {
  export interface StunAddress { address: string, port: number, family: 'IPv4' | 'IPv6' }

  export interface StunAttribute {
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
    addXorAddress (address: string, port: number): StunAttribute | undefined
    addError (code: number, reason?: string): StunAttribute | undefined
    addSoftware (software: string): StunAttribute | undefined
    addFingerprint (): boolean
    toBuffer (): Buffer
  }

  export function createMessage (type: number, transaction?: Buffer): StunRequest
  /** @throws on anything that is not a well-formed STUN message */
  export function decode (message: Buffer): StunMessage
  export function validateFingerprint (message: StunMessage): boolean

  export const constants: Record<string, number>
}
