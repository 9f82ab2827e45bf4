import { lpStream } from '@libp2p/utils'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import { ProtocolHandler } from '../core/protocol-handler.js'
import type { ProtocolHandlerComponents } from '../core/protocol-handler.js'
import { ICE_SERVERS_PROTOCOL, MAX_ICE_SERVERS_MESSAGE_BYTES } from './types.js'
import type { IceServersResponse } from './types.js'

export interface IceServersProtocolInit {
  /** the servers (with a TURN credential) for the peer Noise authenticated */
  serversFor: (peer: PeerId) => IceServersResponse
}

/**
 * Gateway side of /natmesh/ice-servers/1.0.0: the dialer opens a stream and reads one length-prefixed JSON
 * IceServersResponse. No request body: who asks is the connection's remote peer, proven by Noise, so a peer can
 * only ever get credentials in its own name.
 */
export class IceServersProtocol extends ProtocolHandler {
  private readonly init: IceServersProtocolInit

  constructor (components: ProtocolHandlerComponents, init: IceServersProtocolInit) {
    super(components, ICE_SERVERS_PROTOCOL, 'natmesh:ice-servers', { maxInboundStreams: 2 })
    this.init = init
  }

  protected async serve (stream: Stream, connection: Connection): Promise<void> {
    const signal = AbortSignal.timeout(5000)
    try {
      const response = this.init.serversFor(connection.remotePeer)
      await lpStream(stream, { maxDataLength: MAX_ICE_SERVERS_MESSAGE_BYTES }).write(new TextEncoder().encode(JSON.stringify(response)), { signal })
      await stream.close({ signal })
    } catch (err) {
      this.log.error('could not answer ICE servers request from %p - %e', connection.remotePeer, err)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}

export function iceServersProtocol (init: IceServersProtocolInit): (components: ProtocolHandlerComponents) => IceServersProtocol {
  return (components) => new IceServersProtocol(components, init)
}
