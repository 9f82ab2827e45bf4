import type { Session } from '../upgrade/session.js'
import type { NatmeshPeer } from './peer.js'

/** Raw bytes between two peers, netcat style, on a session: the path may change underneath, the bytes don't. */
export const CAT_PROTOCOL = '/natmesh/cat/1.0.0'

export interface CatStreams {
  input: AsyncIterable<Uint8Array>
  output: NodeJS.WritableStream
}

/** Copies `input` into the session and the session into `output`; resolves when both directions are done. */
export async function pipeCat (peer: NatmeshPeer, session: Session, io: CatStreams): Promise<{ sent: number, received: number }> {
  let sent = 0
  let received = 0
  const receiving = (async () => {
    for await (const message of session) {
      received += message.byteLength
      if (!io.output.write(message)) await new Promise(resolve => io.output.once('drain', resolve))
    }
  })()
  const duplex = session.toDuplex()
  await duplex.sink((async function * () {
    for await (const chunk of io.input) {
      sent += chunk.byteLength
      // stdin may reuse its buffers; a session resends what it was given after a path change, so copy
      yield chunk.slice()
    }
  })())
  await receiving
  await session.finished()
  peer.recordBytes(session.peer, sent, received)
  return { sent, received }
}

/** Accepts one cat session. */
export async function acceptCat (peer: NatmeshPeer): Promise<Session> {
  return new Promise((resolve) => {
    peer.handleSessions(CAT_PROTOCOL, (session) => {
      peer.unhandleSessions(CAT_PROTOCOL)
      resolve(session)
    })
  })
}
