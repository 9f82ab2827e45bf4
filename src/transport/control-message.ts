/**
 * Raw datagrams the overlay socket exchanges outside udx streams: connection set-up and punch packets.
 * udx's own packets start with 0xff, so a different first byte keeps the two apart on the one socket.
 *
 *   byte 0-1  magic 'N' 'M'
 *   byte 2    version (1)
 *   byte 3    type
 *   HELLO   dialer -> listener   u32 dialer stream id [, u8 flags]
 *   ACCEPT  listener -> dialer   u32 dialer stream id, u32 listener stream id [, u8 flags]
 *   REJECT  listener -> dialer   u32 dialer stream id, u8 reason
 *   PUNCH   either way           opaque padding, ignored by the receiver: it only opens NAT mappings
 *   PROBE   either way           u8 flags (bit 0: answer), 8-byte token naming one birthday punch attempt;
 *                                whoever receives one learns which of many candidate paths got through
 *
 * HELLO and ACCEPT flags, bit 0 (noise first): in HELLO, the dialer offers to start the connection with Noise
 * straight away instead of first selecting it with multistream-select (a round trip); in ACCEPT, the listener
 * agrees. Both then act as if that selection of `/noise` had taken place. Without the byte (natmesh before it, or
 * no agreement) the connection negotiates as usual; older decoders ignore the extra byte.
 */
export const MAGIC_0 = 0x4e
export const MAGIC_1 = 0x4d
export const VERSION = 1
const HEADER_LENGTH = 4

export enum MessageType { HELLO = 1, ACCEPT = 2, REJECT = 3, PUNCH = 4, PROBE = 5 }
export enum RejectReason { NOT_LISTENING = 1, OVERLOADED = 2 }

const NOISE_FIRST = 0x01

export type ControlMessage =
  | { type: MessageType.HELLO, dialerStreamId: number, noiseFirst?: true }
  | { type: MessageType.ACCEPT, dialerStreamId: number, listenerStreamId: number, noiseFirst?: true }
  | { type: MessageType.REJECT, dialerStreamId: number, reason: RejectReason }
  | { type: MessageType.PUNCH }
  | { type: MessageType.PROBE, token: Uint8Array, answer: boolean }

export const PROBE_TOKEN_LENGTH = 8

const BODY_LENGTH: Record<MessageType, number> = {
  [MessageType.HELLO]: 4,
  [MessageType.ACCEPT]: 8,
  [MessageType.REJECT]: 5,
  [MessageType.PUNCH]: 8,
  [MessageType.PROBE]: 1 + PROBE_TOKEN_LENGTH
}

export class MalformedControlMessageError extends Error {
  override name = 'MalformedControlMessageError'
}

export function encodeControlMessage (message: ControlMessage): Uint8Array {
  const flagged = (message.type === MessageType.HELLO || message.type === MessageType.ACCEPT) && message.noiseFirst === true
  const body = BODY_LENGTH[message.type]
  const buf = new Uint8Array(HEADER_LENGTH + body + (flagged ? 1 : 0))
  if (flagged) buf[HEADER_LENGTH + body] = NOISE_FIRST
  const view = new DataView(buf.buffer)
  buf.set([MAGIC_0, MAGIC_1, VERSION, message.type])
  switch (message.type) {
    case MessageType.HELLO:
      view.setUint32(4, message.dialerStreamId)
      break
    case MessageType.ACCEPT:
      view.setUint32(4, message.dialerStreamId)
      view.setUint32(8, message.listenerStreamId)
      break
    case MessageType.REJECT:
      view.setUint32(4, message.dialerStreamId)
      view.setUint8(8, message.reason)
      break
    case MessageType.PUNCH:
      crypto.getRandomValues(buf.subarray(HEADER_LENGTH))
      break
    case MessageType.PROBE:
      if (message.token.byteLength !== PROBE_TOKEN_LENGTH) throw new RangeError(`a probe token is ${PROBE_TOKEN_LENGTH} bytes, got ${message.token.byteLength}`)
      view.setUint8(4, message.answer ? 1 : 0)
      buf.set(message.token, 5)
      break
  }
  return buf
}

/** True when the datagram claims to be ours; decodeControlMessage then says whether it is well formed. */
export function isControlMessage (buf: Uint8Array): boolean {
  return buf.byteLength >= HEADER_LENGTH && buf[0] === MAGIC_0 && buf[1] === MAGIC_1
}

export function decodeControlMessage (buf: Uint8Array): ControlMessage {
  if (!isControlMessage(buf)) throw new MalformedControlMessageError('not a natmesh control datagram')
  if (buf[2] !== VERSION) throw new MalformedControlMessageError(`unsupported control datagram version ${buf[2]}`)
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength)
  const need = (length: number): void => {
    if (buf.byteLength < HEADER_LENGTH + length) {
      throw new MalformedControlMessageError(`truncated control datagram: ${buf.byteLength} bytes, type ${buf[3]} needs ${HEADER_LENGTH + length}`)
    }
  }
  switch (buf[3]) {
    case MessageType.HELLO:
      need(4)
      return { type: MessageType.HELLO, dialerStreamId: nonZero(view.getUint32(4)), ...noiseFirst(buf, 8) }
    case MessageType.ACCEPT:
      need(8)
      return { type: MessageType.ACCEPT, dialerStreamId: nonZero(view.getUint32(4)), listenerStreamId: nonZero(view.getUint32(8)), ...noiseFirst(buf, 12) }
    case MessageType.REJECT: {
      need(5)
      const reason = view.getUint8(8)
      if (reason !== RejectReason.NOT_LISTENING && reason !== RejectReason.OVERLOADED) {
        throw new MalformedControlMessageError(`unknown reject reason ${reason}`)
      }
      return { type: MessageType.REJECT, dialerStreamId: nonZero(view.getUint32(4)), reason }
    }
    case MessageType.PUNCH:
      return { type: MessageType.PUNCH }
    case MessageType.PROBE:
      need(BODY_LENGTH[MessageType.PROBE])
      return { type: MessageType.PROBE, answer: (view.getUint8(4) & 1) === 1, token: buf.slice(5, 5 + PROBE_TOKEN_LENGTH) }
    default:
      throw new MalformedControlMessageError(`unknown control datagram type ${buf[3]}`)
  }
}

/** the flags byte at `offset`, if the sender wrote one; unknown bits are ignored, for later use */
function noiseFirst (buf: Uint8Array, offset: number): { noiseFirst?: true } {
  return ((buf[offset] ?? 0) & NOISE_FIRST) !== 0 ? { noiseFirst: true } : {}
}

function nonZero (streamId: number): number {
  if (streamId === 0) throw new MalformedControlMessageError('stream id 0 is reserved')
  return streamId
}
