import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { PunchReport } from '../../src/punch-report/pb/punch-report.js'
import { punchReportFromWire, punchReportToWire } from '../../src/punch-report/wire.js'
import type { PunchSummary } from '../../src/punch-report/wire.js'

/** what gateways before the mapping, NAT type and remote peer fields read at most */
const OLD_GATEWAY_LIMIT = 64

describe('punch report on the wire', () => {
  it('carries the reporting peer\'s mapping and NAT type and the remote peer, within what older gateways read', async () => {
    const remotePeer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const report: PunchSummary = { outcome: 'success', attempts: 1, msSinceRelay: 2500, strategy: 'dcutr', sockets: 0, probes: 0, durationMs: 40, mapping: 'endpoint-independent', natType: 'port-restricted-cone', remotePeer }
    const bytes = PunchReport.encode(punchReportToWire(report))
    expect(bytes.byteLength).toBeLessThanOrEqual(OLD_GATEWAY_LIMIT)
    expect(punchReportFromWire(PunchReport.decode(bytes), 'udx')).toEqual({ ...report, transport: 'udx' })
  })

  it('leaves the remote peer out when the report would not fit what older gateways read', async () => {
    const remotePeer = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const report: PunchSummary = { outcome: 'failure', attempts: 100, msSinceRelay: 4_000_000_000, strategy: 'birthday', sockets: 256, probes: 4_000_000_000, durationMs: 4_000_000_000, mapping: 'random', natType: 'symmetric', remotePeer }
    const bytes = PunchReport.encode(punchReportToWire(report))
    expect(bytes.byteLength).toBeLessThanOrEqual(OLD_GATEWAY_LIMIT)
    const { remotePeer: _dropped, ...rest } = report
    expect(punchReportFromWire(PunchReport.decode(bytes), 'tcp')).toEqual({ ...rest, remotePeer: undefined, transport: 'tcp' })
  })

  it('reads an older peer\'s report, which has none of the new fields', () => {
    const old = PunchReport.encode({ outcome: PunchReport.Outcome.SKIPPED, attempts: 0 })
    expect(punchReportFromWire(PunchReport.decode(old), 'udx')).toMatchObject({ outcome: 'skipped', attempts: 0, mapping: undefined, natType: undefined, remotePeer: undefined })
  })
})
