/**
 * Received messages waiting for the application, counted in bytes so the session can stop reading from the
 * network while the application is behind.
 */
export class MessageQueue {
  private readonly items: Uint8Array[] = []
  private head = 0
  private waiting?: { resolve: () => void }
  private ended = false
  private error?: Error
  bytes = 0
  onConsumed?: () => void

  push (message: Uint8Array): void {
    this.items.push(message)
    this.bytes += message.byteLength
    this.wake()
  }

  end (err?: Error): void {
    if (this.ended) return
    this.ended = true
    this.error = err
    this.wake()
  }

  async * [Symbol.asyncIterator] (): AsyncGenerator<Uint8Array> {
    for (;;) {
      if (this.head < this.items.length) {
        const message = this.items[this.head] as Uint8Array
        this.items[this.head++] = EMPTY
        if (this.head > 1024 && this.head * 2 > this.items.length) {
          this.items.splice(0, this.head)
          this.head = 0
        }
        this.bytes -= message.byteLength
        this.onConsumed?.()
        yield message
        continue
      }
      if (this.ended) {
        if (this.error != null) throw this.error
        return
      }
      await new Promise<void>(resolve => { this.waiting = { resolve } })
    }
  }

  private wake (): void {
    const waiting = this.waiting
    this.waiting = undefined
    waiting?.resolve()
  }
}

const EMPTY = new Uint8Array(0)
