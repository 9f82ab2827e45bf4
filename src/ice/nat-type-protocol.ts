import { lpStream } from '@libp2p/utils'
import type { Connection, Libp2p, Logger, PeerId, Stream } from '@libp2p/interface'
import { isNatType } from './strategy.js'
import type { NatType } from './strategy.js'

/**
 * Before an ICE attempt the two peers swap NAT types over the relayed connection (dialler first), so that both
 * derive the same strategy: the dialler to choose it, the answering side to gather the matching candidates.
 */
export const NAT_TYPE_PROTOCOL = '/natmesh/nat-type/1.0.0'
const MAX_MESSAGE = 64
/** above the answering side's wait for its own NAT type detection (NAT_TYPE_WAIT_MS) */
const TIMEOUT_MS = 8000

const encode = (natType: NatType): Uint8Array => new TextEncoder().encode(natType)

/** what a peer sent; `unknown` for anything that is not a NAT type natmesh knows */
function decode (bytes: Uint8Array, from: PeerId, log: Logger): NatType {
  const text = new TextDecoder().decode(bytes)
  if (isNatType(text)) return text
  log('peer %p named an unknown NAT type %s', from, JSON.stringify(text.slice(0, MAX_MESSAGE)))
  return 'unknown'
}

/** Answers NAT type exchanges, also on relayed (limited) connections: that is where they happen. */
export async function handleNatTypeExchange (node: Libp2p, init: { natType: () => Promise<NatType>, onRemote: (peer: PeerId, remote: NatType, own: NatType) => void, log: Logger }): Promise<void> {
  await node.handle(NAT_TYPE_PROTOCOL, async (stream: Stream, connection: Connection) => {
    try {
      const signal = AbortSignal.timeout(TIMEOUT_MS)
      const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE })
      const remote = decode((await lp.read({ signal })).subarray(), connection.remotePeer, init.log)
      const own = await init.natType()
      init.onRemote(connection.remotePeer, remote, own)
      await lp.write(encode(own), { signal })
      await stream.close({ signal })
    } catch (err) {
      init.log('NAT type exchange with %p failed - %e', connection.remotePeer, err)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }, { runOnLimitedConnection: true })
}

/** Tells the remote peer our NAT type; resolves with its own, or `unknown` when it does not say (other mode, garbage, timeout). */
export async function exchangeNatTypes (connection: Connection, own: NatType, log: Logger): Promise<NatType> {
  const signal = AbortSignal.timeout(TIMEOUT_MS)
  let stream: Stream | undefined
  try {
    stream = await connection.newStream(NAT_TYPE_PROTOCOL, { signal, runOnLimitedConnection: true })
    const lp = lpStream(stream, { maxDataLength: MAX_MESSAGE })
    await lp.write(encode(own), { signal })
    const remote = decode((await lp.read({ signal })).subarray(), connection.remotePeer, log)
    await stream.close({ signal }).catch(() => {})
    return remote
  } catch (err) {
    stream?.abort(err instanceof Error ? err : new Error(String(err)))
    log('peer %p did not say its NAT type - %e', connection.remotePeer, err)
    return 'unknown'
  }
}
