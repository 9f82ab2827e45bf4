import { pbStream } from '@libp2p/utils'
import type { Connection, Logger, Stream } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'
import { PunchReport } from './pb/punch-report.js'

export const PUNCH_REPORT_PROTOCOL = '/natmesh/punch-report/1.0.0'
const MAX_REPORT_SIZE = 64

export type PunchOutcome = 'success' | 'failure' | 'skipped'

export interface PunchReportsInit {
  registrar: Registrar
  log: Logger
  /** called once per well-formed report */
  onReport: (report: { outcome: PunchOutcome, attempts: number, msSinceRelay?: number, transport: string }, connection: Connection) => void
}

const outcomes: Partial<Record<PunchReport.Outcome, PunchOutcome>> = {
  [PunchReport.Outcome.SUCCESS]: 'success',
  [PunchReport.Outcome.FAILURE]: 'failure',
  [PunchReport.Outcome.SKIPPED]: 'skipped'
}

/** Gateway side of the punch-report protocol: peers tell it how their hole punches went, for the metrics. */
export async function handlePunchReports (init: PunchReportsInit): Promise<() => Promise<void>> {
  await init.registrar.handle(PUNCH_REPORT_PROTOCOL, async (stream: Stream, connection: Connection) => {
    try {
      const report = await pbStream(stream, { maxDataLength: MAX_REPORT_SIZE }).pb(PunchReport).read({ signal: AbortSignal.timeout(5000) })
      const outcome = report.outcome == null ? undefined : outcomes[report.outcome]
      if (outcome == null) throw new Error(`unknown outcome ${report.outcome ?? '(missing)'}`)
      init.onReport({
        outcome,
        attempts: report.attempts ?? 0,
        msSinceRelay: report.msSinceRelay,
        transport: connection.remoteAddr.toString().includes('/udx') ? 'udx' : 'tcp'
      }, connection)
      await stream.close()
    } catch (err) {
      init.log('rejected punch report from %p - %e', connection.remotePeer, err)
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  })
  return async () => { await init.registrar.unhandle(PUNCH_REPORT_PROTOCOL) }
}

/** Peer side: one report per hole punch, sent to a gateway over an existing connection. */
export async function sendPunchReport (connection: Connection, report: { outcome: PunchOutcome, attempts: number, msSinceRelay?: number }): Promise<void> {
  const signal = AbortSignal.timeout(5000)
  const stream = await connection.newStream(PUNCH_REPORT_PROTOCOL, { signal })
  const outcome = report.outcome === 'success' ? PunchReport.Outcome.SUCCESS : report.outcome === 'failure' ? PunchReport.Outcome.FAILURE : PunchReport.Outcome.SKIPPED
  await pbStream(stream).pb(PunchReport).write({ outcome, attempts: report.attempts, msSinceRelay: report.msSinceRelay }, { signal })
  await stream.close({ signal })
}
