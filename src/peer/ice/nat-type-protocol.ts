import { lpStream } from '@libp2p/utils'
import type { Connection, Libp2p, Logger, Stream } from '@libp2p/interface'
import { isNatType } from './strategy.js'
import type { NatType } from './strategy.js'

/** the answering peer names its NAT type; the dialling one needs both to pick a connection strategy */
export const NAT_TYPE_PROTOCOL = '/natmesh/nat-type/1.0.0'
const MAX_MESSAGE = 64
/** above the answering side's wait for its own NAT type detection (NAT_TYPE_WAIT_MS) */
const TIMEOUT_MS = 8000

/** Answers NAT type questions, also on relayed (limited) connections: that is where they are asked. */
export async function handleNatTypeQueries (node: Libp2p, natType: () => Promise<NatType>, log: Logger): Promise<void> {
  await node.handle(NAT_TYPE_PROTOCOL, async (stream: Stream) => {
    try {
      const signal = AbortSignal.timeout(TIMEOUT_MS)
      await lpStream(stream).write(new TextEncoder().encode(await natType()), { signal })
      await stream.close({ signal })
    } catch (err) {
      log('could not answer a NAT type query - %e', err)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }, { runOnLimitedConnection: true })
}

/** The remote peer's NAT type, or `unknown` when it does not say (older peer, other mode, garbage, timeout). */
export async function queryNatType (connection: Connection, log: Logger): Promise<NatType> {
  const signal = AbortSignal.timeout(TIMEOUT_MS)
  let stream: Stream | undefined
  try {
    stream = await connection.newStream(NAT_TYPE_PROTOCOL, { signal, runOnLimitedConnection: true })
    const answer = new TextDecoder().decode((await lpStream(stream, { maxDataLength: MAX_MESSAGE }).read({ signal })).subarray())
    await stream.close({ signal }).catch(() => {})
    if (isNatType(answer)) return answer
    log('peer %p named an unknown NAT type %s', connection.remotePeer, JSON.stringify(answer.slice(0, MAX_MESSAGE)))
  } catch (err) {
    stream?.abort(err instanceof Error ? err : new Error(String(err)))
    log('peer %p did not say its NAT type - %e', connection.remotePeer, err)
  }
  return 'unknown'
}
