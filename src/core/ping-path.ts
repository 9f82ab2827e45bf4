import { PING_PROTOCOL } from '@libp2p/ping'
import { byteStream } from '@libp2p/utils'
import type { Connection } from '@libp2p/interface'

const PING_LENGTH = 32

/**
 * yamux pings each connection when it opens and then this often, on both ends. The RTT it measures is what lets a
 * stream's receive window grow (throughput on a long path); it never acts on a missed answer, and finding dead
 * paths is the transports' job. yamux's default, every 30 s, made every idle peer cost its gateway a decrypted,
 * answered and encrypted frame twice a minute: at 1,000 peers, most of an idle gateway's JavaScript time.
 */
export const YAMUX_PING_MS = 10 * 60_000

/** concurrent ping streams per connection: a peer's DHT, its gateway pool's health checks and RTT pings overlap */
export const PING_STREAMS = 4

/** Round trip of one libp2p ping over this exact connection (relayed or direct), not whichever libp2p picks. */
export async function pingOver (connection: Connection, timeoutMs = 5000): Promise<number> {
  const signal = AbortSignal.timeout(timeoutMs)
  const stream = await connection.newStream(PING_PROTOCOL, { signal, runOnLimitedConnection: true })
  try {
    const bytes = byteStream(stream)
    const data = crypto.getRandomValues(new Uint8Array(PING_LENGTH))
    const start = performance.now()
    await bytes.write(data, { signal })
    const echoed = await bytes.read({ bytes: PING_LENGTH, signal })
    const rtt = performance.now() - start
    if (!Buffer.from(echoed.subarray()).equals(Buffer.from(data))) throw new Error('ping echo did not match what was sent')
    await stream.close({ signal }).catch(() => {})
    return rtt
  } catch (err) {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
    throw err
  }
}
