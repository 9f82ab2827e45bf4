import type { ComponentLogger, Connection, Logger, Startable, Stream, StreamHandlerOptions } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'

export interface ProtocolHandlerComponents {
  registrar: Registrar
  logger: ComponentLogger
}

/**
 * A libp2p service that answers one protocol (or versions of one): registered with the registrar on start, unregistered on stop,
 * `serve` called once per inbound stream. Subclasses hold only what the protocol does with a stream.
 */
export abstract class ProtocolHandler implements Startable {
  protected readonly log: Logger
  private readonly registrar: Registrar
  private readonly protocols: string[]
  private readonly options?: StreamHandlerOptions

  /** `component`: the log scope (`natmesh:…`) */
  constructor (components: ProtocolHandlerComponents, protocol: string | string[], component: string, options?: StreamHandlerOptions) {
    this.registrar = components.registrar
    this.protocols = typeof protocol === 'string' ? [protocol] : protocol
    this.options = options
    this.log = components.logger.forComponent(component)
  }

  async start (): Promise<void> {
    for (const protocol of this.protocols) {
      await this.registrar.handle(protocol, async (stream, connection) => { await this.serve(stream, connection) }, this.options)
    }
  }

  async stop (): Promise<void> {
    for (const protocol of this.protocols) await this.registrar.unhandle(protocol)
  }

  protected abstract serve (stream: Stream, connection: Connection): Promise<void>
}
