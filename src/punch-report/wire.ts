import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import * as Digest from 'multiformats/hashes/digest'
import { wireEnum } from '../core/wire-enum.js'
import { NAT_TYPES } from '../nat/types.js'
import type { NatType } from '../nat/types.js'
import { MAPPING_KINDS } from '../nat/mapping-profile.js'
import type { MappingKind } from '../nat/mapping-profile.js'
import { PunchReport } from './pb/punch-report.js'

export const PUNCH_REPORT_PROTOCOL = '/natmesh/punch-report/1.0.0'
export const MAX_REPORT_SIZE = 160
/** what gateways before the mapping, NAT type and remote peer fields accept: a report that would not fit goes without the remote peer */
const OLD_GATEWAY_MAX_REPORT_SIZE = 64

export const PUNCH_OUTCOMES = ['success', 'failure', 'skipped'] as const
export type PunchOutcome = typeof PUNCH_OUTCOMES[number]
export const PUNCH_STRATEGIES = ['dcutr', 'birthday', 'skip'] as const
export type PunchStrategyKind = typeof PUNCH_STRATEGIES[number]

/** What a peer says about one hole punch (all attempts to one peer). */
export interface PunchSummary {
  outcome: PunchOutcome
  attempts: number
  msSinceRelay?: number
  strategy?: PunchStrategyKind
  /** extra sockets opened (birthday) */
  sockets?: number
  /** birthday probes and sprayed datagrams */
  probes?: number
  durationMs?: number
  /** how the reporting peer's NAT maps ports, as far as it knows */
  mapping?: MappingKind
  /** the reporting peer's detected NAT type */
  natType?: NatType
  /** whom it punched to */
  remotePeer?: string
}

export interface PunchReportFromPeer extends PunchSummary {
  /** the overlay the reporting peer reaches the gateway over */
  transport: 'udx' | 'tcp'
}

const outcomes = wireEnum<PunchReport.Outcome, PunchOutcome>(PunchReport.Outcome, PUNCH_OUTCOMES)
const strategies = wireEnum<PunchReport.Strategy, PunchStrategyKind>(PunchReport.Strategy, PUNCH_STRATEGIES)
const mappings = wireEnum<PunchReport.Mapping, MappingKind>(PunchReport.Mapping, MAPPING_KINDS, { unknown: PunchReport.Mapping.MAPPING_UNKNOWN })
const natTypes = wireEnum<PunchReport.NatType, NatType>(PunchReport.NatType, NAT_TYPES)

/** A report as it came over the wire; @throws when it names no known outcome */
export function punchReportFromWire (report: PunchReport, transport: PunchReportFromPeer['transport']): PunchReportFromPeer {
  const outcome = outcomes.name(report.outcome)
  if (outcome == null) throw new Error(`unknown outcome ${report.outcome ?? '(missing)'}`)
  const mapping = mappings.name(report.mapping)
  return {
    outcome,
    attempts: report.attempts ?? 0,
    msSinceRelay: report.msSinceRelay,
    strategy: strategies.name(report.strategy),
    sockets: report.sockets,
    probes: report.probes,
    durationMs: report.durationMs,
    // "unknown" on the wire is a peer saying it does not know: the same as saying nothing
    mapping: mapping === 'unknown' ? undefined : mapping,
    natType: natTypes.name(report.natType),
    remotePeer: report.remotePeer == null ? undefined : peerIdFromMultihash(Digest.decode(report.remotePeer)).toString(),
    transport
  }
}

/** What a peer sends; without the remote peer when the report would not fit what older gateways accept. */
export function punchReportToWire (report: PunchSummary): PunchReport {
  const message: PunchReport = {
    outcome: outcomes.wire(report.outcome),
    attempts: report.attempts,
    msSinceRelay: report.msSinceRelay,
    strategy: report.strategy == null ? undefined : strategies.wire(report.strategy),
    sockets: report.sockets,
    probes: report.probes,
    durationMs: report.durationMs,
    mapping: report.mapping == null ? undefined : mappings.wire(report.mapping),
    natType: report.natType == null ? undefined : natTypes.wire(report.natType),
    remotePeer: report.remotePeer == null ? undefined : peerIdFromString(report.remotePeer).toMultihash().bytes
  }
  // an older gateway refuses the whole report when it is longer; the remote peer is what the metrics do without
  if (PunchReport.encode(message).byteLength > OLD_GATEWAY_MAX_REPORT_SIZE) delete message.remotePeer
  return message
}
