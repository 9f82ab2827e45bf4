/** what a duplex needs of a session */
export interface MessageChannel extends AsyncIterable<Uint8Array> {
  send: (message: Uint8Array) => Promise<void>
  close: () => Promise<void>
}

export interface MessageDuplex {
  source: AsyncIterable<Uint8Array>
  sink: (source: AsyncIterable<Uint8Array | { subarray: () => Uint8Array }>) => Promise<void>
}

/** A session as an it-pipe duplex of byte chunks: chunks larger than `maxMessageBytes` go as several messages. */
export function messageDuplex (session: MessageChannel, maxMessageBytes: number): MessageDuplex {
  return {
    source: { [Symbol.asyncIterator]: () => session[Symbol.asyncIterator]() },
    sink: async (source) => {
      for await (const chunk of source) {
        const bytes = chunk instanceof Uint8Array ? chunk : chunk.subarray()
        for (let offset = 0; offset < bytes.byteLength; offset += maxMessageBytes) {
          await session.send(bytes.subarray(offset, offset + maxMessageBytes))
        }
      }
      await session.close()
    }
  }
}
