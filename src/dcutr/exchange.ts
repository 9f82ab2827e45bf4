/**
 * The DCUtR exchange's wire side: reading and writing the spec's messages over the relayed stream, and what
 * each side concludes from the two CONNECTs (both compute the same strategy, so they agree without another
 * round trip). The punch itself is punch-dialer.ts's job.
 */
import { lpStream } from '@libp2p/utils'
import type { LengthPrefixedStream } from '@libp2p/utils'
import type { Stream } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import type { Uint8ArrayList } from 'uint8arraylist'
import type { NatMappingProfile } from '../nat/mapping-profile.js'
import { HolePunch } from './pb/hole-punch.js'
import { MAX_MESSAGE_SIZE } from './constants.js'
import { HolePunchError, NO_UDP_PATH_LOCAL, NO_UDP_PATH_REMOTE } from './errors.js'
import { punchableAddresses } from './dialable-addresses.js'
import type { PunchTarget } from './dialable-addresses.js'
import { sharesPublicIp } from './lan-candidates.js'
import { choosePunchStrategy } from './strategy.js'
import type { PunchStrategy } from './strategy.js'
import { fromWireMapping, toWireMapping } from './wire-mapping.js'

/** length-prefix errors of @libp2p/utils: the remote framed a message we will not read */
const FRAMING_ERRORS = new Set(['InvalidDataLengthError', 'InvalidDataLengthLengthError', 'InvalidMessageLengthError'])

/** DCUtR messages over one stream; anything unreadable or out of order is a BAD_MESSAGE. */
export class DcutrMessages {
  private readonly lp: LengthPrefixedStream<Stream>

  constructor (private readonly stream: Stream) {
    this.lp = lpStream(stream, { maxDataLength: MAX_MESSAGE_SIZE })
  }

  async write (message: HolePunch, signal: AbortSignal): Promise<void> {
    await this.lp.write(HolePunch.encode(message), { signal })
  }

  /** the next message, which must be of `type`; stream errors (reset, EOF, abort) pass as they are */
  async read (type: HolePunch.Type, signal: AbortSignal): Promise<HolePunch> {
    let bytes: Uint8ArrayList
    try {
      bytes = await this.lp.read({ signal })
    } catch (err) {
      if (err instanceof Error && FRAMING_ERRORS.has(err.name)) throw unreadable(err)
      throw err
    }
    let message: HolePunch
    try {
      message = HolePunch.decode(bytes)
    } catch (err) {
      throw unreadable(err)
    }
    if (message.type !== type) throw new HolePunchError('BAD_MESSAGE', `expected ${type}, got ${message.type ?? 'no type'}`)
    return message
  }

  /** ends our side of the exchange; a stream already gone has nothing left to close */
  async close (signal: AbortSignal): Promise<void> {
    await this.stream.close({ signal }).catch(() => {})
  }
}

function unreadable (err: unknown): HolePunchError {
  return new HolePunchError('BAD_MESSAGE', `unreadable DCUtR message: ${err instanceof Error ? err.message : String(err)}`)
}

export function connectMessage (ownAddresses: Multiaddr[], mapping: NatMappingProfile, probeToken: Uint8Array<ArrayBuffer> | undefined, localAddresses: Multiaddr[]): HolePunch {
  return { type: HolePunch.Type.CONNECT, observedAddresses: ownAddresses.map(ma => ma.bytes), mapping: toWireMapping(mapping), probeToken, localAddresses: localAddresses.map(ma => ma.bytes) }
}

export function syncMessage (localAddresses: Multiaddr[]): HolePunch {
  return { type: HolePunch.Type.SYNC, observedAddresses: [], localAddresses: localAddresses.map(ma => ma.bytes) }
}

/**
 * What one side makes of the two CONNECTs: a punch with its strategy and targets, or the reason for none (with
 * the strategy that was weighed, for the outcome).
 */
export type PunchPlan =
  | {
    go: true
    strategy: Exclude<PunchStrategy, { kind: 'skip' }>
    /** the remote's public UDP overlay addresses we can punch to */
    targets: PunchTarget[]
    /** both peers sit behind one public IP and trade LAN candidates (see lan-candidates.ts) */
    sameSite: boolean
  }
  | { go: false, strategy: PunchStrategy, refusal: HolePunchError }

/**
 * The initiator (B), from the responder's CONNECT. `offeredToken`: the probe token our CONNECT offered; the
 * responder echoes it to accept a birthday punch. The responder offers LAN candidates only when it sees us behind
 * its own public IP; then both sides try each other's LAN addresses, which works whatever the shared NAT does.
 */
export function initiatorPlan (ownAddresses: Multiaddr[], ownMapping: NatMappingProfile, offeredToken: Uint8Array | undefined, connect: HolePunch, allowPrivateAddresses: boolean): PunchPlan {
  const agreed = offeredToken != null && connect.probeToken != null && equalBytes(connect.probeToken, offeredToken)
  const sameSite = connect.localAddresses.length > 0 && sharesPublicIp(ownAddresses, connect.observedAddresses)
  const strategy: PunchStrategy = sameSite ? { kind: 'dcutr' } : choosePunchStrategy(ownMapping, fromWireMapping(connect.mapping), agreed)
  if (strategy.kind === 'skip') return { go: false, strategy, refusal: new HolePunchError(strategy.code, strategy.reason) }
  const targets = punchableAddresses(connect.observedAddresses, allowPrivateAddresses)
  if (targets.length === 0) return { go: false, strategy, refusal: new HolePunchError('NO_UDP_PATH', NO_UDP_PATH_REMOTE) }
  return { go: true, strategy, targets, sameSite }
}

/**
 * The responder (A), from the initiator's CONNECT. `acceptedToken`: the initiator's probe token when we accept a
 * birthday punch (we echo it), else undefined. `sameSite`: we offer our LAN candidates. Without a UDP path on
 * either side there is nothing to punch: the initiator sees the same and stops too.
 */
export function responderPlan (ownAddresses: Multiaddr[], ownMapping: NatMappingProfile, acceptedToken: Uint8Array | undefined, connect: HolePunch, sameSite: boolean, allowPrivateAddresses: boolean): PunchPlan {
  const strategy: PunchStrategy = sameSite ? { kind: 'dcutr' } : choosePunchStrategy(fromWireMapping(connect.mapping), ownMapping, acceptedToken != null)
  const targets = punchableAddresses(connect.observedAddresses, allowPrivateAddresses)
  if (ownAddresses.length === 0) return { go: false, strategy, refusal: new HolePunchError('NO_UDP_PATH', NO_UDP_PATH_LOCAL) }
  if (targets.length === 0) return { go: false, strategy, refusal: new HolePunchError('NO_UDP_PATH', NO_UDP_PATH_REMOTE) }
  if (strategy.kind === 'skip') return { go: false, strategy, refusal: new HolePunchError(strategy.code, strategy.reason) }
  return { go: true, strategy, targets, sameSite }
}

function equalBytes (a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && a.every((byte, i) => byte === b[i])
}
