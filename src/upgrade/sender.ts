import type { Carrier } from './carrier.js'
import { BadFrameError, FrameType } from './frames.js'
import { SendBuffer } from './send-buffer.js'
import type { Outgoing } from './send-buffer.js'

export interface SenderInit {
  maxUnackedBytes: number
  /** bytes in flight on a direct carrier */
  windowBytes: number
  /** bytes in flight on a relayed carrier */
  relayWindowBytes: number
  /** the cumulative ack every DATA frame carries: the next seq we expect */
  ack: () => bigint
  /** a DATA or CLOSE frame went out, carrying the current ack */
  transmitted: () => void
  /** the remote acknowledged `entry` */
  delivered: (entry: Outgoing) => void
}

/**
 * A session's send side: the unacknowledged messages and how far they have been written to the current
 * carrier. A new carrier rewinds to the remote's next expected message, so what the old one lost goes again.
 */
export class Sender {
  readonly buffer: SendBuffer
  /** entries resent after a path change */
  resent = 0
  private transmitSeq = 0n
  /** a pump() is running; the next call returns at once */
  private pumping = false

  constructor (private readonly init: SenderInit) {
    this.buffer = new SendBuffer(init.maxUnackedBytes)
  }

  /** Starts over on a new carrier from `remoteExpected` (from RESUME or ACCEPT); throws if we never sent that far. */
  rewind (remoteExpected: bigint): bigint {
    if (remoteExpected > this.buffer.nextSeq) throw new BadFrameError(`remote expects seq ${remoteExpected}, but only ${this.buffer.nextSeq} were sent`)
    this.buffer.acknowledge(remoteExpected, this.init.delivered)
    const from = remoteExpected > this.buffer.firstSeq ? remoteExpected : this.buffer.firstSeq
    if (this.transmitSeq > from) this.resent += Number(this.transmitSeq - from)
    this.transmitSeq = from
    return from
  }

  /** A cumulative ack from the remote: everything below `ack` arrived. */
  acknowledge (ack: bigint): void {
    if (ack > this.buffer.nextSeq) throw new BadFrameError(`ack ${ack} is beyond the ${this.buffer.nextSeq} messages sent`)
    this.buffer.acknowledge(ack, this.init.delivered)
  }

  /** Writes unsent entries to `current()`, in order, within its window and respecting its backpressure. */
  async pump (current: () => Carrier | undefined): Promise<void> {
    if (this.pumping) return
    this.pumping = true
    try {
      for (;;) {
        const carrier = current()
        if (carrier?.open !== true) return
        if (this.transmitSeq < this.buffer.firstSeq) this.transmitSeq = this.buffer.firstSeq
        const entry = this.buffer.at(this.transmitSeq)
        if (entry == null) return
        // wait for acks (which pump again) rather than pile data up in buffers (the relay's above all)
        const window = carrier.path === 'relay' ? this.init.relayWindowBytes : this.init.windowBytes
        if (this.buffer.bytesBetween(this.buffer.firstSeq, this.transmitSeq) >= window) return
        const ok = this.transmit(carrier, entry)
        this.transmitSeq++
        if (!ok) await carrier.drained()
      }
    } finally {
      this.pumping = false
    }
  }

  private transmit (carrier: Carrier, entry: Outgoing): boolean {
    this.init.transmitted()
    if (entry.payload == null) return carrier.write({ type: FrameType.CLOSE, finalSeq: entry.seq })
    // a resend after a path change is not counted again: the copy on a carrier that was closed in good order (an
    // upgrade to direct) is still read by the remote; only a lost carrier's copy is replaced by the new one
    if (entry.sentOn == null || entry.sentOn.lost) entry.sentOn = carrier
    return carrier.write({ type: FrameType.DATA, seq: entry.seq, ack: this.init.ack(), payload: entry.payload })
  }
}
