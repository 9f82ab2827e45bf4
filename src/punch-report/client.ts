import { pbStream } from '@libp2p/utils'
import type { Connection } from '@libp2p/interface'
import { PunchReport } from './pb/punch-report.js'
import { PUNCH_REPORT_PROTOCOL, punchReportToWire } from './wire.js'
import type { PunchSummary } from './wire.js'

/** Peer side: one report per hole punch, sent to a gateway over an existing connection. */
export async function sendPunchReport (connection: Connection, report: PunchSummary): Promise<void> {
  const signal = AbortSignal.timeout(5000)
  const stream = await connection.newStream(PUNCH_REPORT_PROTOCOL, { signal })
  await pbStream(stream).pb(PunchReport).write(punchReportToWire(report), { signal })
  await stream.close({ signal })
}
