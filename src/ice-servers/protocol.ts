import { lpStream } from '@libp2p/utils'
import type { ComponentLogger, Connection, Logger, PeerId, Startable, Stream } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'
import { ICE_SERVERS_PROTOCOL, MAX_ICE_SERVERS_MESSAGE_BYTES } from './types.js'
import type { IceServersResponse } from './types.js'

export interface IceServersProtocolInit {
  /** the servers (with a TURN credential) for the peer Noise authenticated */
  serversFor: (peer: PeerId) => IceServersResponse
}

export interface IceServersProtocolComponents {
  registrar: Registrar
  logger: ComponentLogger
}

/**
 * Gateway side of /natmesh/ice-servers/1.0.0: the dialer opens a stream and reads one length-prefixed JSON
 * IceServersResponse. No request body: who asks is the connection's remote peer, proven by Noise, so a peer can
 * only ever get credentials in its own name.
 */
export class IceServersProtocol implements Startable {
  private readonly components: IceServersProtocolComponents
  private readonly init: IceServersProtocolInit
  private readonly log: Logger

  constructor (components: IceServersProtocolComponents, init: IceServersProtocolInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('natmesh:ice-servers')
  }

  async start (): Promise<void> {
    await this.components.registrar.handle(ICE_SERVERS_PROTOCOL, async (stream, connection) => {
      await this.answer(stream, connection)
    }, { maxInboundStreams: 2 })
  }

  async stop (): Promise<void> {
    await this.components.registrar.unhandle(ICE_SERVERS_PROTOCOL)
  }

  private async answer (stream: Stream, connection: Connection): Promise<void> {
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

export function iceServersProtocol (init: IceServersProtocolInit): (components: IceServersProtocolComponents) => IceServersProtocol {
  return (components) => new IceServersProtocol(components, init)
}
