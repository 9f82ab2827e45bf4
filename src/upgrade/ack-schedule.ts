/** received bytes after which an ACK goes out at once instead of after the delay */
const ACK_EVERY_BYTES = 64 * 1024

/**
 * When a receiver acknowledges: every ACK rides on outgoing DATA when there is some; otherwise a standalone
 * ACK follows `delayMs` after the first unacknowledged message, or at once after 64 KiB of them.
 */
export class AckSchedule {
  private timer?: NodeJS.Timeout
  private unackedBytes = 0

  constructor (private readonly delayMs: number, private readonly sendAck: () => void) {}

  /** A message of `bytes` arrived. */
  received (bytes: number): void {
    this.unackedBytes += bytes
    if (this.unackedBytes >= ACK_EVERY_BYTES) this.sendAck()
    else this.timer ??= setTimeout(() => { this.sendAck() }, this.delayMs)
  }

  /** Our current ack went out (in a DATA or ACK frame), or no more will be sent. */
  settled (): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.unackedBytes = 0
  }
}
