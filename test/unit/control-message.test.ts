import { describe, expect, it } from 'vitest'
import {
  decodeControlMessage,
  encodeControlMessage,
  isControlMessage,
  MAGIC_0,
  MAGIC_1,
  MalformedControlMessageError,
  MessageType,
  RejectReason,
  VERSION
} from '../../src/transport/control-message.js'
import type { ControlMessage } from '../../src/transport/control-message.js'

/** the full encoded length of each type, from the wire layout in control-message.ts */
const FULL_LENGTH: Record<MessageType, number> = {
  [MessageType.HELLO]: 8,
  [MessageType.ACCEPT]: 12,
  [MessageType.REJECT]: 9,
  [MessageType.PUNCH]: 12,
  [MessageType.PROBE]: 13
}

function expectMalformed (buf: Uint8Array, message: RegExp): void {
  let thrown: unknown
  try {
    decodeControlMessage(buf)
  } catch (err) {
    thrown = err
  }
  expect(thrown, `decoding ${Buffer.from(buf).toString('hex')} should throw`).toBeInstanceOf(MalformedControlMessageError)
  expect((thrown as Error).name).toBe('MalformedControlMessageError')
  expect((thrown as Error).message).toMatch(message)
}

function header (type: number, version = VERSION): number[] {
  return [MAGIC_0, MAGIC_1, version, type]
}

describe('control datagrams: encode/decode', () => {
  const samples: ControlMessage[] = [
    { type: MessageType.HELLO, dialerStreamId: 1 },
    { type: MessageType.HELLO, dialerStreamId: 0xffff_ffff },
    { type: MessageType.HELLO, dialerStreamId: 0x1234_5678 },
    { type: MessageType.ACCEPT, dialerStreamId: 7, listenerStreamId: 0xffff_ffff },
    { type: MessageType.ACCEPT, dialerStreamId: 0x8000_0000, listenerStreamId: 1 },
    { type: MessageType.REJECT, dialerStreamId: 42, reason: RejectReason.NOT_LISTENING },
    { type: MessageType.REJECT, dialerStreamId: 0xdead_beef, reason: RejectReason.OVERLOADED },
    { type: MessageType.PROBE, token: new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]), answer: false },
    { type: MessageType.PROBE, token: new Uint8Array(8).fill(0xff), answer: true }
  ]

  for (const message of samples) {
    it(`round-trips ${MessageType[message.type]} ${JSON.stringify(message)}`, () => {
      const encoded = encodeControlMessage(message)
      expect(encoded.byteLength).toBe(FULL_LENGTH[message.type])
      expect([...encoded.subarray(0, 4)]).toEqual(header(message.type))
      expect(isControlMessage(encoded)).toBe(true)
      expect(decodeControlMessage(encoded)).toEqual(message)
    })
  }

  it('writes stream ids big-endian where the wire layout says', () => {
    const accept = encodeControlMessage({ type: MessageType.ACCEPT, dialerStreamId: 0x01020304, listenerStreamId: 0x0a0b0c0d })
    expect([...accept]).toEqual([...header(MessageType.ACCEPT), 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d])
    const reject = encodeControlMessage({ type: MessageType.REJECT, dialerStreamId: 0x01020304, reason: RejectReason.OVERLOADED })
    expect([...reject]).toEqual([...header(MessageType.REJECT), 1, 2, 3, 4, RejectReason.OVERLOADED])
  })

  it('appends the noise-first flags byte to HELLO and ACCEPT only when set, and reads it back', () => {
    const hello = encodeControlMessage({ type: MessageType.HELLO, dialerStreamId: 0x01020304, noiseFirst: true })
    expect([...hello]).toEqual([...header(MessageType.HELLO), 1, 2, 3, 4, 0x01])
    expect(decodeControlMessage(hello)).toEqual({ type: MessageType.HELLO, dialerStreamId: 0x01020304, noiseFirst: true })
    const accept = encodeControlMessage({ type: MessageType.ACCEPT, dialerStreamId: 5, listenerStreamId: 6, noiseFirst: true })
    expect([...accept]).toEqual([...header(MessageType.ACCEPT), 0, 0, 0, 5, 0, 0, 0, 6, 0x01])
    expect(decodeControlMessage(accept)).toEqual({ type: MessageType.ACCEPT, dialerStreamId: 5, listenerStreamId: 6, noiseFirst: true })
  })

  it('reads a flags byte without the noise-first bit, or with only unknown bits, as no flag (what older peers send: nothing)', () => {
    expect(decodeControlMessage(new Uint8Array([...header(MessageType.HELLO), 0, 0, 0, 9, 0x00]))).toEqual({ type: MessageType.HELLO, dialerStreamId: 9 })
    expect(decodeControlMessage(new Uint8Array([...header(MessageType.HELLO), 0, 0, 0, 9, 0xfe]))).toEqual({ type: MessageType.HELLO, dialerStreamId: 9 })
    expect(decodeControlMessage(new Uint8Array([...header(MessageType.ACCEPT), 0, 0, 0, 9, 0, 0, 0, 10, 0x81]))).toEqual({ type: MessageType.ACCEPT, dialerStreamId: 9, listenerStreamId: 10, noiseFirst: true })
  })

  it('lays PROBE out as flags then token, and refuses to encode a token of the wrong size', () => {
    const probe = encodeControlMessage({ type: MessageType.PROBE, token: new Uint8Array([9, 8, 7, 6, 5, 4, 3, 2]), answer: true })
    expect([...probe]).toEqual([...header(MessageType.PROBE), 1, 9, 8, 7, 6, 5, 4, 3, 2])
    expect(() => encodeControlMessage({ type: MessageType.PROBE, token: new Uint8Array(7), answer: false })).toThrow(/8 bytes, got 7/)
  })

  it('round-trips PUNCH, whose padding is random and ignored', () => {
    const a = encodeControlMessage({ type: MessageType.PUNCH })
    const b = encodeControlMessage({ type: MessageType.PUNCH })
    expect(decodeControlMessage(a)).toEqual({ type: MessageType.PUNCH })
    expect(decodeControlMessage(b)).toEqual({ type: MessageType.PUNCH })
    // 8 random bytes: two punches being identical is a 2^-64 event
    expect(Buffer.from(a.subarray(4)).equals(Buffer.from(b.subarray(4)))).toBe(false)
    // a bare header is a PUNCH too: the padding is opaque
    expect(decodeControlMessage(new Uint8Array(header(MessageType.PUNCH)))).toEqual({ type: MessageType.PUNCH })
  })

  it('decodes a datagram that sits at an offset inside a larger buffer (pooled Buffers)', () => {
    const encoded = encodeControlMessage({ type: MessageType.ACCEPT, dialerStreamId: 99, listenerStreamId: 100 })
    const pool = new Uint8Array(64).fill(0xaa)
    pool.set(encoded, 13)
    const view = pool.subarray(13, 13 + encoded.byteLength)
    expect(decodeControlMessage(view)).toEqual({ type: MessageType.ACCEPT, dialerStreamId: 99, listenerStreamId: 100 })
    expect(decodeControlMessage(Buffer.from(pool.buffer, 13, encoded.byteLength))).toEqual({ type: MessageType.ACCEPT, dialerStreamId: 99, listenerStreamId: 100 })
  })
})

describe('control datagrams: malformed input', () => {
  it('rejects a wrong magic', () => {
    const good = encodeControlMessage({ type: MessageType.HELLO, dialerStreamId: 5 })
    for (const [i, byte] of [[0, 0x4f], [1, 0x00], [0, 0xff]] as const) {
      const bad = Uint8Array.from(good)
      bad[i] = byte
      expect(isControlMessage(bad)).toBe(false)
      expectMalformed(bad, /not a natmesh control datagram/)
    }
  })

  it('rejects every version but 1, naming the version', () => {
    for (const version of [0, 2, 3, 0x7f, 0xff]) {
      const bad = new Uint8Array([...header(MessageType.HELLO, version), 0, 0, 0, 5])
      // it claims to be ours, so the socket hands it to the decoder, which refuses it
      expect(isControlMessage(bad)).toBe(true)
      expectMalformed(bad, new RegExp(`unsupported control datagram version ${version}\\b`))
    }
  })

  it('rejects unknown types, naming the type', () => {
    for (const type of [0, 6, 7, 0x80, 0xff]) {
      expectMalformed(new Uint8Array([...header(type), 0, 0, 0, 1, 0, 0, 0, 1, 1]), new RegExp(`unknown control datagram type ${type}\\b`))
    }
  })

  it('rejects every truncation of every type', () => {
    const full: Record<MessageType, Uint8Array> = {
      [MessageType.HELLO]: encodeControlMessage({ type: MessageType.HELLO, dialerStreamId: 0x01020304 }),
      [MessageType.ACCEPT]: encodeControlMessage({ type: MessageType.ACCEPT, dialerStreamId: 0x01020304, listenerStreamId: 0x05060708 }),
      [MessageType.REJECT]: encodeControlMessage({ type: MessageType.REJECT, dialerStreamId: 0x01020304, reason: RejectReason.OVERLOADED }),
      [MessageType.PUNCH]: encodeControlMessage({ type: MessageType.PUNCH }),
      [MessageType.PROBE]: encodeControlMessage({ type: MessageType.PROBE, token: new Uint8Array(8).fill(7), answer: false })
    }
    let checked = 0
    for (const type of [MessageType.HELLO, MessageType.ACCEPT, MessageType.REJECT, MessageType.PUNCH, MessageType.PROBE]) {
      const encoded = full[type]
      // a PUNCH needs only its header; the other types need their whole body
      const needed = type === MessageType.PUNCH ? 4 : encoded.byteLength
      for (let length = 0; length < needed; length++) {
        const truncated = encoded.slice(0, length)
        if (length < 4) {
          expect(isControlMessage(truncated)).toBe(false)
          expectMalformed(truncated, /not a natmesh control datagram/)
        } else {
          expectMalformed(truncated, new RegExp(`truncated control datagram: ${length} bytes, type ${type} needs ${needed}`))
        }
        checked++
      }
      // and the full length decodes
      expect(decodeControlMessage(encoded.slice(0, needed)).type).toBe(type)
    }
    expect(checked).toBe(4 + 8 + 12 + 9 + 13)
  })

  it('rejects stream id 0 wherever a stream id is carried', () => {
    expectMalformed(new Uint8Array([...header(MessageType.HELLO), 0, 0, 0, 0]), /stream id 0 is reserved/)
    expectMalformed(new Uint8Array([...header(MessageType.ACCEPT), 0, 0, 0, 0, 0, 0, 0, 9]), /stream id 0 is reserved/)
    expectMalformed(new Uint8Array([...header(MessageType.ACCEPT), 0, 0, 0, 9, 0, 0, 0, 0]), /stream id 0 is reserved/)
    expectMalformed(new Uint8Array([...header(MessageType.REJECT), 0, 0, 0, 0, RejectReason.OVERLOADED]), /stream id 0 is reserved/)
    // the encoder does not check, so a buggy caller's id 0 is caught on the receiving side
    expectMalformed(encodeControlMessage({ type: MessageType.HELLO, dialerStreamId: 0 }), /stream id 0 is reserved/)
  })

  it('rejects unknown reject reasons, naming the reason', () => {
    for (const reason of [0, 3, 0x7f, 0xff]) {
      expectMalformed(new Uint8Array([...header(MessageType.REJECT), 0, 0, 0, 1, reason]), new RegExp(`unknown reject reason ${reason}\\b`))
    }
  })
})

describe('isControlMessage', () => {
  it('tells udx packets (first byte 0xff) from control datagrams', () => {
    // a udx data packet header: magic 0xff, version 1, type, data offset, then stream id, window, seq, ack
    const udx = new Uint8Array(20)
    udx.set([0xff, 0x01, 0x00, 0x00, 0x4e, 0x4d, 0x01, 0x01])
    expect(isControlMessage(udx)).toBe(false)
    expect(isControlMessage(new Uint8Array([0xff]))).toBe(false)
    expect(isControlMessage(new Uint8Array([0xff, MAGIC_1, VERSION, MessageType.HELLO]))).toBe(false)
    expect(isControlMessage(new Uint8Array([MAGIC_0, 0xff, VERSION, MessageType.HELLO]))).toBe(false)
    for (const message of [
      { type: MessageType.HELLO, dialerStreamId: 1 },
      { type: MessageType.ACCEPT, dialerStreamId: 1, listenerStreamId: 2 },
      { type: MessageType.REJECT, dialerStreamId: 1, reason: RejectReason.NOT_LISTENING },
      { type: MessageType.PUNCH }
    ] satisfies ControlMessage[]) {
      const encoded = encodeControlMessage(message)
      expect(encoded[0]).not.toBe(0xff)
      expect(isControlMessage(encoded)).toBe(true)
    }
  })

  it('needs a whole header', () => {
    expect(isControlMessage(new Uint8Array())).toBe(false)
    expect(isControlMessage(new Uint8Array([MAGIC_0]))).toBe(false)
    expect(isControlMessage(new Uint8Array([MAGIC_0, MAGIC_1]))).toBe(false)
    expect(isControlMessage(new Uint8Array([MAGIC_0, MAGIC_1, VERSION]))).toBe(false)
    expect(isControlMessage(new Uint8Array([MAGIC_0, MAGIC_1, VERSION, 0]))).toBe(true)
  })
})
