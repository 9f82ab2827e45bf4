import { constants, createMessage, decode } from '@msimerson/stun'
import type { StunAddress, StunMessage, StunResponse } from '@msimerson/stun'
import type { Endpoint } from './endpoint.js'

/**
 * STUN messages (RFC 8489) on top of the @msimerson/stun codec: the one place natmesh turns datagrams into STUN
 * messages, and Binding messages with the RFC 5780 attributes NAT behaviour discovery needs. Shared by the
 * gateway's server, the transaction engine, NAT detection and the TURN client.
 */

export type { Endpoint } from './endpoint.js'

/** CHANGE-REQUEST flags (RFC 5780 §7.2) */
export interface ChangeRequest { ip: boolean, port: boolean }

const CHANGE_IP = 0x04
const CHANGE_PORT = 0x02
const MAGIC_COOKIE = 0x2112a442
const HEADER_BYTES = 20
/** the two top bits of every STUN message are zero: how RFC 8489 §5 tells STUN from other protocols on a port */
const FIRST_BYTE_MAX = 0x3f

const TYPE = {
  request: constants.STUN_BINDING_REQUEST as number,
  response: constants.STUN_BINDING_RESPONSE as number,
  error: constants.STUN_BINDING_ERROR_RESPONSE as number
}

export const ATTR = {
  xorMappedAddress: constants.STUN_ATTR_XOR_MAPPED_ADDRESS as number,
  changeRequest: constants.STUN_ATTR_CHANGE_REQUEST as number,
  otherAddress: constants.STUN_ATTR_OTHER_ADDRESS as number,
  responseOrigin: constants.STUN_ATTR_RESPONSE_ORIGIN as number,
  errorCode: constants.STUN_ATTR_ERROR_CODE as number,
  fingerprint: constants.STUN_ATTR_FINGERPRINT as number,
  unknownAttributes: constants.STUN_ATTR_UNKNOWN_ATTRIBUTES as number
}

const SOFTWARE = 'natmesh'

export function bindingRequest (transactionId: Buffer, change?: ChangeRequest, options: { fingerprint?: boolean } = {}): Buffer {
  const message = createMessage(TYPE.request, transactionId)
  if (change != null && (change.ip || change.port)) {
    message.addAttribute(ATTR.changeRequest, (change.ip ? CHANGE_IP : 0) | (change.port ? CHANGE_PORT : 0))
  }
  if (options.fingerprint === true) message.addFingerprint()
  return message.toBuffer()
}

export interface ParsedRequest {
  transactionId: Buffer
  change: ChangeRequest
  /** the request carried a FINGERPRINT, so the response gets one too */
  fingerprint: boolean
}

/** Cheap checks before the codec runs: the header of an RFC 8489 message whose length matches the datagram */
function looksLikeStun (datagram: Buffer): boolean {
  return datagram.length >= HEADER_BYTES &&
    datagram[0] !== undefined && datagram[0] <= FIRST_BYTE_MAX &&
    datagram.readUInt32BE(4) === MAGIC_COOKIE &&
    datagram.readUInt16BE(2) === datagram.length - HEADER_BYTES &&
    datagram.readUInt16BE(2) % 4 === 0
}

/** The STUN message in a datagram, or undefined for anything else (other protocols sharing the socket, garbage) */
export function decodeStun (datagram: Buffer): StunResponse | undefined {
  if (!looksLikeStun(datagram)) return undefined
  try {
    return decode(datagram)
  } catch {
    return undefined
  }
}

/** an encoded message's transaction id (RFC 8489 §5: bytes 8 to 20), as a map key */
export function transactionKey (message: Buffer): string {
  return message.subarray(8, HEADER_BYTES).toString('hex')
}

/** the class bits of a message type (RFC 8489 §5): request, indication, success or error response */
export type MessageClass = 'request' | 'indication' | 'success' | 'error'

export function messageClass (type: number): MessageClass {
  switch (type & 0x0110) {
    case 0x0000: return 'request'
    case 0x0010: return 'indication'
    case 0x0100: return 'success'
    default: return 'error'
  }
}

/** The Binding request in a datagram, or undefined for anything else (malformed, another method, a response) */
export function parseBindingRequest (datagram: Buffer): ParsedRequest | undefined {
  const message = decodeStun(datagram)
  if (message?.type !== TYPE.request) return undefined
  const flags = message.getAttribute(ATTR.changeRequest)?.value
  const bits = typeof flags === 'number' ? flags : 0
  return {
    transactionId: message.transactionId,
    change: { ip: (bits & CHANGE_IP) !== 0, port: (bits & CHANGE_PORT) !== 0 },
    fingerprint: message.hasAttribute(ATTR.fingerprint)
  }
}

export interface BindingResponseInit {
  transactionId: Buffer
  /** where the request came from: XOR-MAPPED-ADDRESS */
  mapped: Endpoint
  /** the address the response is sent from, when known: RESPONSE-ORIGIN */
  origin?: Endpoint
  /** the server's other address (alternate IP, or same IP) and other port: OTHER-ADDRESS */
  other?: Endpoint
  /**
   * add FINGERPRINT (as coturn does: when the request had one). It is for telling STUN from other protocols on a
   * shared port, and the codec encodes the message twice to compute it, which halves the answers per second
   */
  fingerprint?: boolean
}

export function bindingResponse (init: BindingResponseInit): Buffer {
  const message = createMessage(TYPE.response, init.transactionId)
  message.addXorAddress(init.mapped.address, init.mapped.port)
  if (init.origin != null) message.addAttribute(ATTR.responseOrigin, init.origin.address, init.origin.port)
  if (init.other != null) message.addAttribute(ATTR.otherAddress, init.other.address, init.other.port)
  message.addSoftware(SOFTWARE)
  if (init.fingerprint === true) message.addFingerprint()
  return message.toBuffer()
}

/** 420 naming CHANGE-REQUEST: what RFC 5780 §6.1 answers when a server cannot send from the address asked for */
export function changeRequestRefused (transactionId: Buffer): Buffer {
  const message = createMessage(TYPE.error, transactionId)
  message.addError(420)
  message.addAttribute(ATTR.unknownAttributes, [ATTR.changeRequest])
  return message.toBuffer()
}

export type ParsedResponse =
  | { kind: 'success', transactionId: Buffer, mapped: Endpoint, origin?: Endpoint, other?: Endpoint }
  | { kind: 'error', transactionId: Buffer, code: number }

/** A Binding success or error response, or undefined for anything else */
export function parseBindingResponse (datagram: Buffer): ParsedResponse | undefined {
  const message = decodeStun(datagram)
  return message == null ? undefined : bindingResponseOf(message)
}

/** The Binding success or error response a decoded message is, or undefined for anything else */
export function bindingResponseOf (message: StunMessage): ParsedResponse | undefined {
  if (message.type === TYPE.error) {
    const error = message.getAttribute(ATTR.errorCode)?.value as { code?: number } | undefined
    return { kind: 'error', transactionId: message.transactionId, code: error?.code ?? 0 }
  }
  if (message.type !== TYPE.response) return undefined
  const mapped = endpointOf(message.getXorAddress())
  if (mapped == null) return undefined
  const origin = endpointOf(message.getAttribute(ATTR.responseOrigin)?.value as StunAddress | undefined)
  const other = endpointOf(message.getAttribute(ATTR.otherAddress)?.value as StunAddress | undefined)
  return { kind: 'success', transactionId: message.transactionId, mapped, ...(origin != null ? { origin } : {}), ...(other != null ? { other } : {}) }
}

function endpointOf (value: StunAddress | undefined): Endpoint | undefined {
  return value?.address == null ? undefined : { address: value.address, port: value.port }
}
