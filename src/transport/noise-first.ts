/**
 * "Noise first" (see control-message.ts): once both ends agreed on it in HELLO and ACCEPT, nothing of libp2p's
 * multistream-select for `/noise` crosses the wire, which saves its round trip. libp2p's upgrader still runs that
 * selection, so each end plays the other's part locally: the dialer's proposal is held back and answered with the
 * listener's echo; the listener is handed the dialer's proposal, and its echo is held back. Noise then negotiates
 * the stream muxer in its handshake, as it always does here.
 */
import type { Upgrader } from '@libp2p/interface'

export const NOISE_PROTOCOL = '/noise'
const MULTISTREAM_PROTOCOL = '/multistream/1.0.0'

/** What multistream-select's dialer writes to propose one protocol, and what the listener writes to accept it. */
export function multistreamOpening (protocol: string): Uint8Array {
  const lines = [MULTISTREAM_PROTOCOL, protocol].map(name => new TextEncoder().encode(`${name}\n`))
  // each line is length-prefixed with an unsigned varint: one byte for lines this short
  for (const line of lines) if (line.byteLength > 0x7f) throw new RangeError(`protocol name too long for a one-byte length: ${protocol}`)
  const out = new Uint8Array(lines.reduce((sum, line) => sum + 1 + line.byteLength, 0))
  let offset = 0
  for (const line of lines) {
    out[offset] = line.byteLength
    out.set(line, offset + 1)
    offset += 1 + line.byteLength
  }
  return out
}

/**
 * Whether this end's upgrader would settle on Noise: a dialer proposes its first connection encrypter, a
 * listener accepts any it has. Only then may it offer, or agree to, noise first.
 */
export function upgradesWithNoise (upgrader: Upgrader, direction: 'inbound' | 'outbound'): boolean {
  const encrypters = [...upgrader.getConnectionEncrypters().keys()]
  return direction === 'outbound' ? encrypters[0] === NOISE_PROTOCOL : encrypters.includes(NOISE_PROTOCOL)
}

export class NoiseFirstMismatchError extends Error {
  override name = 'NoiseFirstMismatchError'
}

/** The bytes our own upgrader is expected to write first; they are consumed here instead of being sent. */
export class HeldBack {
  private matched = 0

  constructor (private readonly expected: Uint8Array) {}

  get done (): boolean {
    return this.matched === this.expected.byteLength
  }

  /** consumes the expected bytes at the start of `chunk` and returns the rest; throws if they differ */
  take (chunk: Uint8Array): Uint8Array {
    const length = Math.min(chunk.byteLength, this.expected.byteLength - this.matched)
    for (let i = 0; i < length; i++) {
      if (chunk[i] !== this.expected[this.matched + i]) {
        throw new NoiseFirstMismatchError('noise first was agreed, but this end\'s upgrader did not select /noise with multistream-select first')
      }
    }
    this.matched += length
    return chunk.subarray(length)
  }
}
