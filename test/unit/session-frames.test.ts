import { describe, expect, it } from 'vitest'
import { BadFrameError, decodeFrame, encodeFrame, ErrorCode, FrameDecoder, FrameType } from '../../src/upgrade/frames.js'
import type { Frame } from '../../src/upgrade/frames.js'

const id = new Uint8Array(16).fill(7)
const boot = new Uint8Array(8).fill(9)

function wire (frame: Frame): Uint8Array {
  return Uint8Array.from(Buffer.concat(encodeFrame(frame)))
}

/** byte fields as plain arrays, so Buffer views and Uint8Arrays compare by content */
function plain (frames: Frame[]): unknown[] {
  return frames.map(frame => Object.fromEntries(Object.entries(frame).map(([k, v]) => [k, v instanceof Uint8Array ? Array.from(v) : v])))
}

describe('session frames', () => {
  const frames: Frame[] = [
    { type: FrameType.OPEN, sessionId: id, bootId: boot, protocol: '/chat/1.0.0' },
    { type: FrameType.RESUME, sessionId: id, bootId: boot, nextExpected: 12345678901n },
    { type: FrameType.ACCEPT, nextExpected: 42n },
    { type: FrameType.DATA, seq: 7n, ack: 3n, payload: new Uint8Array([1, 2, 3]) },
    { type: FrameType.DATA, seq: 0n, ack: 0n, payload: new Uint8Array(0) },
    { type: FrameType.ACK, ack: 99n },
    { type: FrameType.CLOSE, finalSeq: 100n },
    { type: FrameType.ERROR, code: ErrorCode.UNKNOWN_SESSION, message: 'unknown session' }
  ]

  it('round-trips every frame type, also when the bytes arrive one at a time', () => {
    const all = Uint8Array.from(Buffer.concat(frames.map(wire)))
    expect(plain(new FrameDecoder(1024).push(all))).toEqual(plain(frames))
    const decoder = new FrameDecoder(1024)
    const out: Frame[] = []
    for (const byte of all) out.push(...decoder.push(new Uint8Array([byte])))
    expect(plain(out)).toEqual(plain(frames))
  })

  it('rejects an absurd length before buffering anything', () => {
    const decoder = new FrameDecoder(64 * 1024)
    expect(() => decoder.push(new Uint8Array([0xff, 0xff, 0xff, 0xff, FrameType.DATA]))).toThrow(BadFrameError)
    expect(() => new FrameDecoder(1024).push(new Uint8Array([0, 0, 0, 0]))).toThrow(/frame length 0/)
  })

  it('rejects DATA larger than the negotiated maximum', () => {
    const big = wire({ type: FrameType.DATA, seq: 0n, ack: 0n, payload: new Uint8Array(2048) })
    expect(() => new FrameDecoder(1024).push(big)).toThrow(/outside 1\.\.1041/)
  })

  it('rejects truncated bodies, unknown types, bad protocol names and invalid UTF-8', () => {
    expect(() => decodeFrame(new Uint8Array([FrameType.ACK, 0, 0]))).toThrow(/ACK body is 2 bytes, expected 8/)
    expect(() => decodeFrame(new Uint8Array([FrameType.RESUME, ...new Uint8Array(10)]))).toThrow(BadFrameError)
    expect(() => decodeFrame(new Uint8Array([99]))).toThrow(/unknown frame type 99/)
    expect(() => decodeFrame(new Uint8Array([FrameType.ERROR, 200]))).toThrow(/unknown error code 200/)
    const open = wire({ type: FrameType.OPEN, sessionId: id, bootId: boot, protocol: '/p' }).subarray(4)
    const zeroLength = Uint8Array.from(open); zeroLength[25] = 0; zeroLength[26] = 0
    expect(() => decodeFrame(zeroLength)).toThrow(/protocol name of 0 bytes/)
    const longer = Uint8Array.from(open); longer[26] = 50
    expect(() => decodeFrame(longer)).toThrow(BadFrameError)
    const badUtf8 = Uint8Array.from(open); badUtf8[27] = 0xff
    expect(() => decodeFrame(badUtf8)).toThrow(/not valid UTF-8/)
  })

  it('keeps going after a partial frame until the rest arrives', () => {
    const bytes = wire({ type: FrameType.ACK, ack: 5n })
    const decoder = new FrameDecoder(1024)
    expect(decoder.push(bytes.subarray(0, 6))).toEqual([])
    expect(decoder.push(bytes.subarray(6))).toEqual([{ type: FrameType.ACK, ack: 5n }])
  })
})
