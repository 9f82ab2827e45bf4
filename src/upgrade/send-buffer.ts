/** One outgoing entry: a message, or the session's CLOSE, which takes a sequence number of its own. */
export interface Outgoing {
  seq: bigint
  payload: Uint8Array | null
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

  async waitForRoom (length: number, signal?: AbortSignal): Promise<void> {
    while (!this.hasRoomFor(length)) {
      signal?.throwIfAborted()
      await new Promise<void>((resolve, reject) => {
        const onAbort = (): void => { reject(signal?.reason ?? new Error('aborted')) }
        signal?.addEventListener('abort', onAbort, { once: true })
        this.waiters.push(() => { signal?.removeEventListener('abort', onAbort); resolve() })
      })
    }
  }

  push (payload: Uint8Array | null): Outgoing {
    const entry = { seq: this.nextSeq++, payload }
    this.entries.push(entry)
    this.bytes += payload?.byteLength ?? 0
    return entry
  }

  /** The entry with sequence number `seq`, if still unacknowledged. */
  at (seq: bigint): Outgoing | undefined {
    const index = Number(seq - this.firstSeq)
    return index >= 0 ? this.entries[this.head + index] : undefined
  }

  /** Drops everything below `ack` (the remote's next expected seq). */
  acknowledge (ack: bigint): void {
    let released = false
    while (this.head < this.entries.length && (this.entries[this.head] as Outgoing).seq < ack) {
      this.bytes -= this.entries[this.head]?.payload?.byteLength ?? 0
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
