import { pbStream } from '@libp2p/utils'
import type { Connection, Stream } from '@libp2p/interface'
import { ProtocolHandler } from '../core/protocol-handler.js'
import type { ProtocolHandlerComponents } from '../core/protocol-handler.js'
import { isUdxMultiaddr } from '../transport/index.js'
import { PunchReport } from './pb/punch-report.js'
import { MAX_REPORT_SIZE, PUNCH_REPORT_PROTOCOL, punchReportFromWire } from './wire.js'
import type { PunchReportFromPeer } from './wire.js'

export interface PunchReportsInit {
  /** called once per well-formed report */
  onReport: (report: PunchReportFromPeer, connection: Connection) => void
}

/** Gateway side of the punch-report protocol: peers tell it how their hole punches went, for the metrics. */
export class PunchReports extends ProtocolHandler {
  private readonly init: PunchReportsInit

  constructor (components: ProtocolHandlerComponents, init: PunchReportsInit) {
    super(components, PUNCH_REPORT_PROTOCOL, 'natmesh:punch-reports')
    this.init = init
  }

  protected async serve (stream: Stream, connection: Connection): Promise<void> {
    try {
      const report = await pbStream(stream, { maxDataLength: MAX_REPORT_SIZE }).pb(PunchReport).read({ signal: AbortSignal.timeout(5000) })
      this.init.onReport(punchReportFromWire(report, isUdxMultiaddr(connection.remoteAddr) ? 'udx' : 'tcp'), connection)
      await stream.close()
    } catch (err) {
      this.log('rejected punch report from %p - %e', connection.remotePeer, err)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }
}

export function punchReports (init: PunchReportsInit): (components: ProtocolHandlerComponents) => PunchReports {
  return (components) => new PunchReports(components, init)
}
