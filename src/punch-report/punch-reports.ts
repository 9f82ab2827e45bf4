import { peerIdFromMultihash, peerIdFromString } from '@libp2p/peer-id'
import { pbStream } from '@libp2p/utils'
import * as Digest from 'multiformats/hashes/digest'
import type { ComponentLogger, Connection, Logger, PeerId, Startable, Stream } from '@libp2p/interface'
import type { Registrar } from '@libp2p/interface-internal'
import type { NatType } from '../nat/types.js'
import type { MappingKind } from '../nat/mapping-profile.js'
import { isUdxMultiaddr } from '../transport/index.js'
import { PunchReport } from './pb/punch-report.js'

export const PUNCH_REPORT_PROTOCOL = '/natmesh/punch-report/1.0.0'
const MAX_REPORT_SIZE = 160
/** what gateways before the mapping, NAT type and remote peer fields accept: a report that would not fit goes without the remote peer */
const OLD_GATEWAY_MAX_REPORT_SIZE = 64

export type PunchOutcome = 'success' | 'failure' | 'skipped'
export type PunchStrategyKind = 'dcutr' | 'birthday' | 'skip'

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

export interface PunchReportsInit {
  /** called once per well-formed report */
  onReport: (report: PunchReportFromPeer, connection: Connection) => void
}

export interface PunchReportsComponents {
  registrar: Registrar
  logger: ComponentLogger
}

const outcomes: Partial<Record<PunchReport.Outcome, PunchOutcome>> = {
  [PunchReport.Outcome.SUCCESS]: 'success',
  [PunchReport.Outcome.FAILURE]: 'failure',
  [PunchReport.Outcome.SKIPPED]: 'skipped'
}

const strategies: Partial<Record<PunchReport.Strategy, PunchStrategyKind>> = {
  [PunchReport.Strategy.DCUTR]: 'dcutr',
  [PunchReport.Strategy.BIRTHDAY]: 'birthday',
  [PunchReport.Strategy.SKIP]: 'skip'
}

const mappings: Partial<Record<PunchReport.Mapping, MappingKind>> = {
  [PunchReport.Mapping.OPEN]: 'open',
  [PunchReport.Mapping.ENDPOINT_INDEPENDENT]: 'endpoint-independent',
  [PunchReport.Mapping.SEQUENTIAL]: 'sequential',
  [PunchReport.Mapping.RANDOM]: 'random'
}
const toWireMapping: Record<MappingKind, PunchReport.Mapping> = {
  open: PunchReport.Mapping.OPEN,
  'endpoint-independent': PunchReport.Mapping.ENDPOINT_INDEPENDENT,
  sequential: PunchReport.Mapping.SEQUENTIAL,
  random: PunchReport.Mapping.RANDOM,
  unknown: PunchReport.Mapping.MAPPING_UNKNOWN
}

const natTypes: Partial<Record<PunchReport.NatType, NatType>> = {
  [PunchReport.NatType.NO_NAT]: 'no-nat',
  [PunchReport.NatType.FULL_CONE]: 'full-cone',
  [PunchReport.NatType.RESTRICTED_CONE]: 'restricted-cone',
  [PunchReport.NatType.PORT_RESTRICTED_CONE]: 'port-restricted-cone',
  [PunchReport.NatType.SYMMETRIC]: 'symmetric',
  [PunchReport.NatType.UDP_BLOCKED]: 'udp-blocked'
}
const toWireNatType: Record<NatType, PunchReport.NatType> = {
  'no-nat': PunchReport.NatType.NO_NAT,
  'full-cone': PunchReport.NatType.FULL_CONE,
  'restricted-cone': PunchReport.NatType.RESTRICTED_CONE,
  'port-restricted-cone': PunchReport.NatType.PORT_RESTRICTED_CONE,
  symmetric: PunchReport.NatType.SYMMETRIC,
  'udp-blocked': PunchReport.NatType.UDP_BLOCKED
}

const toWireStrategy: Record<PunchStrategyKind, PunchReport.Strategy> = {
  dcutr: PunchReport.Strategy.DCUTR,
  birthday: PunchReport.Strategy.BIRTHDAY,
  skip: PunchReport.Strategy.SKIP
}

/** Gateway side of the punch-report protocol: peers tell it how their hole punches went, for the metrics. */
export class PunchReports implements Startable {
  private readonly components: PunchReportsComponents
  private readonly init: PunchReportsInit
  private readonly log: Logger

  constructor (components: PunchReportsComponents, init: PunchReportsInit) {
    this.components = components
    this.init = init
    this.log = components.logger.forComponent('natmesh:punch-reports')
  }

  async start (): Promise<void> {
    await this.components.registrar.handle(PUNCH_REPORT_PROTOCOL, async (stream, connection) => {
      await this.receive(stream, connection)
    })
  }

  async stop (): Promise<void> {
    await this.components.registrar.unhandle(PUNCH_REPORT_PROTOCOL)
  }

  private async receive (stream: Stream, connection: Connection): Promise<void> {
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

export function punchReports (init: PunchReportsInit): (components: PunchReportsComponents) => PunchReports {
  return (components) => new PunchReports(components, init)
}

/** Peer side: one report per hole punch, sent to a gateway over an existing connection. */
export async function sendPunchReport (connection: Connection, report: PunchSummary): Promise<void> {
  const signal = AbortSignal.timeout(5000)
  const stream = await connection.newStream(PUNCH_REPORT_PROTOCOL, { signal })
  await pbStream(stream).pb(PunchReport).write(punchReportToWire(report), { signal })
  await stream.close({ signal })
}

/** A report as it came over the wire; @throws when it names no known outcome */
export function punchReportFromWire (report: PunchReport, transport: PunchReportFromPeer['transport']): PunchReportFromPeer {
  const outcome = report.outcome == null ? undefined : outcomes[report.outcome]
  if (outcome == null) throw new Error(`unknown outcome ${report.outcome ?? '(missing)'}`)
  return {
    outcome,
    attempts: report.attempts ?? 0,
    msSinceRelay: report.msSinceRelay,
    strategy: report.strategy == null ? undefined : strategies[report.strategy],
    sockets: report.sockets,
    probes: report.probes,
    durationMs: report.durationMs,
    mapping: report.mapping == null ? undefined : mappings[report.mapping],
    natType: report.natType == null ? undefined : natTypes[report.natType],
    remotePeer: report.remotePeer == null ? undefined : peerIdFromBytes(report.remotePeer).toString(),
    transport
  }
}

/** What a peer sends; without the remote peer when the report would not fit what older gateways accept. */
export function punchReportToWire (report: PunchSummary): PunchReport {
  const outcome = report.outcome === 'success' ? PunchReport.Outcome.SUCCESS : report.outcome === 'failure' ? PunchReport.Outcome.FAILURE : PunchReport.Outcome.SKIPPED
  const message: PunchReport = {
    outcome,
    attempts: report.attempts,
    msSinceRelay: report.msSinceRelay,
    strategy: report.strategy == null ? undefined : toWireStrategy[report.strategy],
    sockets: report.sockets,
    probes: report.probes,
    durationMs: report.durationMs,
    mapping: report.mapping == null ? undefined : toWireMapping[report.mapping],
    natType: report.natType == null ? undefined : toWireNatType[report.natType],
    remotePeer: report.remotePeer == null ? undefined : peerIdFromString(report.remotePeer).toMultihash().bytes
  }
  // an older gateway refuses the whole report when it is longer; the remote peer is what the metrics do without
  if (PunchReport.encode(message).byteLength > OLD_GATEWAY_MAX_REPORT_SIZE) delete message.remotePeer
  return message
}

function peerIdFromBytes (bytes: Uint8Array): PeerId {
  return peerIdFromMultihash(Digest.decode(bytes))
}
