import type { Stream } from '@libp2p/interface'

/**
 * What the relay holds for its circuits: bytes read from one side and not yet handed to the other side's muxer.
 * `peakPerCircuit` is the most any one circuit ever held; backpressure keeps it near two stream windows.
 */
export class RelayBuffers {
  private readonly circuits = new Set<() => number>()
  private peak = 0

  /** bytes held right now, all circuits together */
  get current (): number {
    let sum = 0
    for (const held of this.circuits) sum += held()
    return sum
  }

  get peakPerCircuit (): number {
    return this.peak
  }

  track (held: () => number): () => void {
    this.circuits.add(held)
    return () => { this.circuits.delete(held) }
  }

  observe (bytes: number): void {
    if (bytes > this.peak) this.peak = bytes
  }
}

export interface SpliceInit {
  /** aborts both streams with its reason */
  signal: AbortSignal
  /** told once both streams have closed */
  onEnd?: () => void
  /** bytes both directions together may carry; the message that would pass it aborts both streams */
  dataLimit?: bigint
  /** the error a data limit cut carries */
  dataLimitError: () => Error
  buffers: RelayBuffers
}

/**
 * Joins two streams in both directions. A side is paused while the other cannot take more (its send() said
 * false) and resumed on its 'drain', so a paused side stops granting its muxer window and the sender waits:
 * what the relay holds per circuit stays bounded whatever the speeds of the two ends. (The stock relay's
 * pipe pushes every incoming message into a queue that nothing bounds, and keeps a second, unread copy of the
 * dialer's direction for the circuit's lifetime.)
 */
export function splice (a: Stream, b: Stream, init: SpliceInit): void {
  let remaining = init.dataLimit
  const held = (): number => a.readBufferLength + a.writeBufferLength + b.readBufferLength + b.writeBufferLength
  const untrack = init.buffers.track(held)
  const abortBoth = (err: Error): void => {
    a.abort(err)
    b.abort(err)
  }
  const onAbort = (): void => { abortBoth(init.signal.reason instanceof Error ? init.signal.reason : new Error(String(init.signal.reason))) }
  if (init.signal.aborted) {
    onAbort()
    untrack()
    return
  }
  init.signal.addEventListener('abort', onAbort, { once: true })

  /** sides paused, or about to be, until the other side drains */
  const waiting = new Set<Stream>()
  const forward = (from: Stream, to: Stream): void => {
    from.addEventListener('message', (evt) => {
      if (remaining != null) {
        remaining -= BigInt(evt.data.byteLength)
        if (remaining < 0n) {
          abortBoth(init.dataLimitError())
          return
        }
      }
      if (to.writeStatus !== 'writable') {
        abortBoth(new Error(`the other side of the circuit is ${to.writeStatus}`))
        return
      }
      const more = to.send(evt.data)
      init.buffers.observe(held())
      if (!more && !waiting.has(from)) {
        waiting.add(from)
        let drained = false
        to.addEventListener('drain', () => {
          drained = true
          waiting.delete(from)
          if (from.readStatus === 'paused') from.resume()
        }, { once: true })
        // not now: this message may be the paused-up data that resume() is handing over, and resume() grants the
        // muxer window again after it; a pause from inside it would be undone and the sender never stopped
        queueMicrotask(() => { if (!drained && from.readStatus === 'readable') from.pause() })
      }
    })
    // a half-close passes through; the other direction goes on until its own end
    from.addEventListener('remoteCloseWrite', () => {
      if (to.writeStatus === 'writable') to.close().catch((err: Error) => { to.abort(err) })
    }, { once: true })
  }
  forward(a, b)
  forward(b, a)

  let open = 2
  for (const [stream, other] of [[a, b], [b, a]] as const) {
    stream.addEventListener('close', (evt) => {
      if (evt.error != null) other.abort(evt.error)
      if (--open === 0) {
        init.signal.removeEventListener('abort', onAbort)
        untrack()
        init.onEnd?.()
      }
    }, { once: true })
  }
}
