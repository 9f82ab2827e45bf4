import type { StreamMuxerFactory } from '@libp2p/interface'

/** The connection under a stream was reset; a relay cuts a relayed connection this way at its data or time limit. */
export class ConnectionResetError extends Error {
  override name = 'ConnectionResetError'
}

/**
 * Makes a reset connection end its streams with an error. libp2p's muxers (@libp2p/utils AbstractStreamMuxer)
 * close their streams as if the remote had finished when the connection under them closes, dropping the reset's
 * error, so a relay cutting a circuit at --circuit-data-bytes looked to a plain stream's sender like a clean
 * end, and what it had written vanished. This listener runs before the muxer's own (it is added first) and
 * aborts the streams with the reason; the muxer's clean close then finds them ended already.
 */
export function abortStreamsOnReset (muxer: () => StreamMuxerFactory): () => StreamMuxerFactory {
  return () => {
    const factory = muxer()
    return {
      protocol: factory.protocol,
      createStreamMuxer: (maConn) => {
        let created: ReturnType<StreamMuxerFactory['createStreamMuxer']> | undefined
        maConn.addEventListener('close', (evt) => {
          if (evt.error == null) return
          // the muxer sits on the encrypted stream, which knows nothing of addresses: the reason names both cases
          const reason = new ConnectionResetError(`the connection was reset (${evt.error.message}); a relay resets a relayed connection that reaches its data or duration limit`)
          // stream by stream: the muxer's own abort would try to tell the remote over the closed connection, and throw
          for (const stream of [...created?.streams ?? []]) stream.abort(reason)
        }, { once: true })
        created = factory.createStreamMuxer(maConn)
        return created
      }
    }
  }
}
