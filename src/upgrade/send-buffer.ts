import type { Carrier } from './carrier.js'

/** One outgoing entry: a message, or the session's CLOSE, which takes a sequence number of its own. */
export interface Outgoing {
  seq: bigint
  payload: Uint8Array | null
  /** payload bytes pushed before this entry, so the bytes between two sequence numbers are a subtraction */
  offset: number
  /** the carrier whose copy of this entry is taken to have reached the remote (see Session.transmit) */
  sentOn?: Carrier
}

/**
 * Messages sent but not yet acknowledged by the remote, in sequence order. Bounded in bytes: a writer waits
 * until acknowledgements make room, so a stalled path turns into backpressure, not unbounded memory.
 */
export class SendBuffer {
  private readonly entries: Outgoing[] = []
  private head = 0
  private waiters: Array<() => void> = []
  private readonly maxBytes: number
  bytes = 0
  nextSeq = 0n
  private pushedBytes = 0

  constructor (maxBytes: number) {
    this.maxBytes = maxBytes
  }

  get length (): number {
    return this.entries.length - this.head
  }

  /** seq of the oldest unacknowledged entry (nextSeq when everything is acknowledged) */
  get firstSeq (): bigint {
    return this.entries[this.head]?.seq ?? this.nextSeq
  }

  hasRoomFor (length: number): boolean {
    return this.length === 0 || this.bytes + length <= this.maxBytes
  }

  /** Resolves at the next acknowledgement or wake(); the caller checks again (room, and whether it may still send). */
  async waitForChange (signal?: AbortSignal): Promise<void> {
    signal?.throwIfAborted()
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => { reject(signal?.reason ?? new Error('aborted')) }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiters.push(() => { signal?.removeEventListener('abort', onAbort); resolve() })
    })
  }

  push (payload: Uint8Array | null): Outgoing {
    const entry = { seq: this.nextSeq++, payload, offset: this.pushedBytes }
    this.entries.push(entry)
    this.bytes += payload?.byteLength ?? 0
    this.pushedBytes += payload?.byteLength ?? 0
    return entry
  }

  /** payload bytes from `from` (inclusive) to `to` (exclusive), both unacknowledged or nextSeq */
  bytesBetween (from: bigint, to: bigint): number {
    const offsetOf = (seq: bigint): number => this.at(seq)?.offset ?? this.pushedBytes
    return offsetOf(to) - offsetOf(from)
  }

  /** The entry with sequence number `seq`, if still unacknowledged. */
  at (seq: bigint): Outgoing | undefined {
    const index = Number(seq - this.firstSeq)
    return index >= 0 ? this.entries[this.head + index] : undefined
  }

  /** Drops everything below `ack` (the remote's next expected seq), handing each entry to `delivered`. */
  acknowledge (ack: bigint, delivered: (entry: Outgoing) => void): void {
    let released = false
    while (this.head < this.entries.length && (this.entries[this.head] as Outgoing).seq < ack) {
      const entry = this.entries[this.head] as Outgoing
      this.bytes -= entry.payload?.byteLength ?? 0
      delivered(entry)
      this.head++
      released = true
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head)
      this.head = 0
    }
    if (released) this.wake()
  }

  /** Wakes every waiting writer, e.g. so they see that the session failed. */
  wake (): void {
    const waiters = this.waiters
    this.waiters = []
    for (const waiter of waiters) waiter()
  }
}
