import type { AbortOptions, Connection } from '@libp2p/interface'
import type { TransportManager } from '@libp2p/interface-internal'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface DialNowOptions extends AbortOptions {
  /** the transport's progress events (the UDP overlay's UDX_ANSWERED, say) */
  onProgress?: (event: { type: string, detail: unknown }) => void
}

/** Dials one address at once. */
export type DialAddress = (address: Multiaddr, options: DialNowOptions) => Promise<Connection>

/**
 * Dials one address straight through its transport, outside libp2p's dial queue. The queue joins every dial to a
 * peer already being dialled and tries the addresses one after another, so a TCP dial to a gateway would wait out
 * a UDP one that never answers, and a LAN dial would wait behind a public address: racing them needs dials side
 * by side. The connection is upgraded and registered like any other (the upgrader announces it).
 *
 * `signal` ends the dial only: transports may tie the new connection's socket to the signal they dialled with
 * (@libp2p/tcp does), and a timeout firing later must not take the connection down.
 */
export async function dialNow (transportManager: TransportManager, address: Multiaddr, options: DialNowOptions): Promise<Connection> {
  const dialing = new AbortController()
  const outer = options.signal
  const onAbort = (): void => { dialing.abort(outer?.reason) }
  if (outer?.aborted === true) onAbort()
  outer?.addEventListener('abort', onAbort, { once: true })
  try {
    return await transportManager.dial(address, { signal: dialing.signal, onProgress: options.onProgress })
  } finally {
    outer?.removeEventListener('abort', onAbort)
  }
}

/** A libp2p service exposing dialNow to code outside libp2p (the gateway links). */
export class AddressDialer {
  private readonly components: { transportManager: TransportManager }

  constructor (components: { transportManager: TransportManager }) {
    this.components = components
  }

  readonly dial: DialAddress = async (address, options) => dialNow(this.components.transportManager, address, options)
}

export function addressDialer (): (components: { transportManager: TransportManager }) => AddressDialer {
  return (components) => new AddressDialer(components)
}
