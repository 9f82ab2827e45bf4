import { Uint8ArrayList } from 'uint8arraylist'

/**
 * The session wire format. Every frame: u32 length of what follows, u8 type, body (big endian).
 *
 *   OPEN    session id (16) | boot id (8) | protocol length u16 | protocol utf-8     initiator -> responder
 *   RESUME  session id (16) | boot id (8) | next expected seq u64                   initiator -> responder
 *   ACCEPT  next expected seq u64                                                   responder -> initiator
 *   DATA    seq u64 | cumulative ack u64 | payload
 *   ACK     cumulative ack u64 (the next seq the sender of the ACK expects)
 *   CLOSE   final seq u64 (no DATA at or after it will follow)
 *   ERROR   code u8 | utf-8 message
 *
 * OPEN/RESUME/ACCEPT set a carrier stream up; the rest flow both ways. Sequence numbers count messages.
 */
export enum FrameType { OPEN = 1, RESUME = 2, ACCEPT = 3, DATA = 4, ACK = 5, CLOSE = 6, ERROR = 7 }
export enum ErrorCode { UNKNOWN_SESSION = 1, NO_HANDLER = 2, BAD_FRAME = 3, PEER_RESTARTED = 4, CLOSED = 5 }

export const SESSION_ID_LENGTH = 16
export const BOOT_ID_LENGTH = 8
const LENGTH_PREFIX = 4
const MAX_PROTOCOL_LENGTH = 256
const MAX_ERROR_MESSAGE = 1024

export type Frame =
  | { type: FrameType.OPEN, sessionId: Uint8Array, bootId: Uint8Array, protocol: string }
  | { type: FrameType.RESUME, sessionId: Uint8Array, bootId: Uint8Array, nextExpected: bigint }
  | { type: FrameType.ACCEPT, nextExpected: bigint }
  | { type: FrameType.DATA, seq: bigint, ack: bigint, payload: Uint8Array }
  | { type: FrameType.ACK, ack: bigint }
  | { type: FrameType.CLOSE, finalSeq: bigint }
  | { type: FrameType.ERROR, code: ErrorCode, message: string }

export class BadFrameError extends Error {
  override name = 'BadFrameError'
}

const encoder = new TextEncoder()
const decoder = new TextDecoder('utf-8', { fatal: true })

/** Encodes one frame; DATA returns [header, payload] so a large payload is never copied. */
export function encodeFrame (frame: Frame): Uint8Array[] {
  if (frame.type === FrameType.DATA) {
    const header = new Uint8Array(LENGTH_PREFIX + 1 + 16)
    const view = new DataView(header.buffer)
    view.setUint32(0, 1 + 16 + frame.payload.byteLength)
    view.setUint8(4, frame.type)
    view.setBigUint64(5, frame.seq)
    view.setBigUint64(13, frame.ack)
    return [header, frame.payload]
  }
  const body = encodeBody(frame)
  const out = new Uint8Array(LENGTH_PREFIX + 1 + body.byteLength)
  const view = new DataView(out.buffer)
  view.setUint32(0, 1 + body.byteLength)
  view.setUint8(4, frame.type)
  out.set(body, 5)
  return [out]
}

function encodeBody (frame: Exclude<Frame, { type: FrameType.DATA }>): Uint8Array {
  switch (frame.type) {
    case FrameType.OPEN: {
      const protocol = encoder.encode(frame.protocol)
      if (protocol.byteLength > MAX_PROTOCOL_LENGTH) throw new RangeError(`protocol name longer than ${MAX_PROTOCOL_LENGTH} bytes`)
      const body = new Uint8Array(SESSION_ID_LENGTH + BOOT_ID_LENGTH + 2 + protocol.byteLength)
      body.set(frame.sessionId, 0)
      body.set(frame.bootId, SESSION_ID_LENGTH)
      new DataView(body.buffer).setUint16(SESSION_ID_LENGTH + BOOT_ID_LENGTH, protocol.byteLength)
      body.set(protocol, SESSION_ID_LENGTH + BOOT_ID_LENGTH + 2)
      return body
    }
    case FrameType.RESUME: {
      const body = new Uint8Array(SESSION_ID_LENGTH + BOOT_ID_LENGTH + 8)
      body.set(frame.sessionId, 0)
      body.set(frame.bootId, SESSION_ID_LENGTH)
      new DataView(body.buffer).setBigUint64(SESSION_ID_LENGTH + BOOT_ID_LENGTH, frame.nextExpected)
      return body
    }
    case FrameType.ACCEPT: return u64(frame.nextExpected)
    case FrameType.ACK: return u64(frame.ack)
    case FrameType.CLOSE: return u64(frame.finalSeq)
    case FrameType.ERROR: {
      const message = encoder.encode(frame.message.slice(0, MAX_ERROR_MESSAGE))
      const body = new Uint8Array(1 + message.byteLength)
      body[0] = frame.code
      body.set(message, 1)
      return body
    }
  }
}

function u64 (value: bigint): Uint8Array {
  const body = new Uint8Array(8)
  new DataView(body.buffer).setBigUint64(0, value)
  return body
}

/**
 * Splits a byte stream into frames. Lengths are checked before anything is buffered, so an absurd length
 * fails at once instead of making us wait for (or allocate) gigabytes.
 */
export class FrameDecoder {
  private readonly buffer = new Uint8ArrayList()
  private readonly maxFrameLength: number

  constructor (maxPayloadLength: number) {
    // the largest legal frame is DATA with a maximal payload
    this.maxFrameLength = 1 + 16 + maxPayloadLength
  }

  /** Appends bytes and returns every frame now complete. Throws BadFrameError on a malformed frame. */
  push (chunk: Uint8Array | Uint8ArrayList): Frame[] {
    this.buffer.append(chunk)
    const frames: Frame[] = []
    while (this.buffer.byteLength >= LENGTH_PREFIX) {
      const length = this.buffer.getUint32(0)
      if (length < 1 || length > this.maxFrameLength) throw new BadFrameError(`frame length ${length} outside 1..${this.maxFrameLength}`)
      if (this.buffer.byteLength < LENGTH_PREFIX + length) break
      const frame = this.buffer.subarray(LENGTH_PREFIX, LENGTH_PREFIX + length)
      this.buffer.consume(LENGTH_PREFIX + length)
      frames.push(decodeFrame(frame))
    }
    return frames
  }
}

export function decodeFrame (frame: Uint8Array): Frame {
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength)
  const type = frame[0]
  const body = frame.byteLength - 1
  const need = (length: number, exact = true): void => {
    if (exact ? body !== length : body < length) throw new BadFrameError(`${FrameType[type ?? 0] ?? 'frame'} body is ${body} bytes, expected ${exact ? '' : 'at least '}${length}`)
  }
  switch (type) {
    case FrameType.OPEN: {
      need(SESSION_ID_LENGTH + BOOT_ID_LENGTH + 2, false)
      const protocolLength = view.getUint16(1 + SESSION_ID_LENGTH + BOOT_ID_LENGTH)
      if (protocolLength === 0 || protocolLength > MAX_PROTOCOL_LENGTH) throw new BadFrameError(`protocol name of ${protocolLength} bytes`)
      need(SESSION_ID_LENGTH + BOOT_ID_LENGTH + 2 + protocolLength)
      return {
        type,
        sessionId: frame.slice(1, 1 + SESSION_ID_LENGTH),
        bootId: frame.slice(1 + SESSION_ID_LENGTH, 1 + SESSION_ID_LENGTH + BOOT_ID_LENGTH),
        protocol: utf8(frame.subarray(1 + SESSION_ID_LENGTH + BOOT_ID_LENGTH + 2))
      }
    }
    case FrameType.RESUME:
      need(SESSION_ID_LENGTH + BOOT_ID_LENGTH + 8)
      return {
        type,
        sessionId: frame.slice(1, 1 + SESSION_ID_LENGTH),
        bootId: frame.slice(1 + SESSION_ID_LENGTH, 1 + SESSION_ID_LENGTH + BOOT_ID_LENGTH),
        nextExpected: view.getBigUint64(1 + SESSION_ID_LENGTH + BOOT_ID_LENGTH)
      }
    case FrameType.ACCEPT:
      need(8)
      return { type, nextExpected: view.getBigUint64(1) }
    case FrameType.DATA:
      need(16, false)
      return { type, seq: view.getBigUint64(1), ack: view.getBigUint64(9), payload: frame.subarray(17) }
    case FrameType.ACK:
      need(8)
      return { type, ack: view.getBigUint64(1) }
    case FrameType.CLOSE:
      need(8)
      return { type, finalSeq: view.getBigUint64(1) }
    case FrameType.ERROR: {
      need(1, false)
      const code = frame[1] ?? 0
      if (ErrorCode[code] == null) throw new BadFrameError(`unknown error code ${code}`)
      return { type, code, message: utf8(frame.subarray(2, 2 + MAX_ERROR_MESSAGE)) }
    }
    default:
      throw new BadFrameError(`unknown frame type ${type ?? '(empty)'}`)
  }
}

function utf8 (bytes: Uint8Array): string {
  try {
    return decoder.decode(bytes)
  } catch {
    throw new BadFrameError('text field is not valid UTF-8')
  }
}
