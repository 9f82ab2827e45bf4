import type { Connection, Stream } from '@libp2p/interface'
import type { Path } from './events.js'
import type { NatmeshPeer } from './peer.js'
import { isRelayed } from './relay-address.js'

/** Raw bytes between two peers, netcat style. */
export const CAT_PROTOCOL = '/natmesh/cat/1.0.0'

export interface CatStreams {
  input: AsyncIterable<Uint8Array>
  output: NodeJS.WritableStream
}

/** Copies `input` into the stream and the stream into `output`; resolves when both directions are done. */
export async function pipeCat (peer: NatmeshPeer, stream: Stream, connection: Connection, io: CatStreams): Promise<{ sent: number, received: number, path: Path }> {
  let sent = 0
  let received = 0
  const path: Path = isRelayed(connection.remoteAddr) ? 'relay' : 'direct'
  const receiving = (async () => {
    for await (const chunk of stream) {
      const bytes = chunk.subarray()
      received += bytes.byteLength
      if (!io.output.write(bytes)) await new Promise(resolve => io.output.once('drain', resolve))
    }
  })()
  for await (const chunk of io.input) {
    sent += chunk.byteLength
    if (!stream.send(chunk)) await new Promise(resolve => stream.addEventListener('drain', resolve, { once: true }))
  }
  await stream.close()
  await receiving
  peer.recordBytes(connection.remotePeer, sent, received)
  return { sent, received, path }
}

/** Accepts one cat stream (on a relayed or direct connection) and resolves with it. */
export async function acceptCat (peer: NatmeshPeer): Promise<{ stream: Stream, connection: Connection }> {
  return new Promise((resolve, reject) => {
    peer.node.handle(CAT_PROTOCOL, (stream, connection) => {
      void peer.node.unhandle(CAT_PROTOCOL)
      resolve({ stream, connection })
    }, { runOnLimitedConnection: true }).catch(reject)
  })
}

/** Opens a cat stream on the best connection to the target: direct if the hole punch got one in time. */
export async function openCat (peer: NatmeshPeer, target: string, waitForDirectMs: number): Promise<{ stream: Stream, connection: Connection }> {
  const relayed = await peer.connect(target)
  const direct = peer.config.mode === 'opportunistic' && peer.config.natTraversal.enabled
    ? await peer.waitForDirect(relayed.remotePeer, waitForDirectMs)
    : undefined
  const connection = direct ?? peer.bestConnection(relayed.remotePeer) ?? relayed
  const stream = await connection.newStream(CAT_PROTOCOL, { runOnLimitedConnection: true })
  return { stream, connection }
}
