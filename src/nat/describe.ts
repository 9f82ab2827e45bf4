import { formatEndpoint } from '../stun/endpoint.js'
import type { NatReport, NatType } from './types.js'

export type ModeVerdict = 'works' | 'partly' | 'no'

export interface ModeAdvice {
  mode: 'relay-only' | 'opportunistic' | 'ice'
  verdict: ModeVerdict
  why: string
}

/** What the gateways offer, as `natmesh doctor` found it: the advice depends on it as much as on the NAT */
export interface GatewaySetup {
  /** at least one gateway answered a libp2p dial (UDP overlay or TCP) at the addresses given */
  reachable: boolean
  /** at least one gateway hands out TURN credentials */
  turn: boolean
}

const UNREACHABLE = 'no gateway answered a libp2p dial at the addresses given: check their ports and firewalls'

/** Which natmesh modes give this NAT what with these gateways, and why */
export function modeAdvice (report: NatReport, setup: GatewaySetup): ModeAdvice[] {
  if (!setup.reachable) {
    return (['relay-only', 'opportunistic', 'ice'] as const).map(mode => ({ mode, verdict: 'no', why: UNREACHABLE }))
  }
  const relay: ModeAdvice = {
    mode: 'relay-only',
    verdict: 'works',
    why: report.natType === 'udp-blocked'
      ? 'the gateway link falls back to TCP, and relayed traffic needs nothing else'
      : 'relayed traffic only needs the link to the gateway'
  }
  return [relay, opportunistic(report), ice(report.natType, setup.turn)]
}

function opportunistic (report: NatReport): ModeAdvice {
  const mode = 'opportunistic'
  switch (report.natType) {
    case 'udp-blocked':
      return { mode, verdict: 'no', why: 'hole punching needs UDP; every connection stays on the relay' }
    case 'symmetric': {
      const how = report.allocation === 'sequential'
        ? `ports are allocated sequentially (step ${report.allocationDelta ?? '?'}), so a birthday punch tries the predicted ports first`
        : 'a birthday punch (many sockets here, probes from the other side) finds one'
      return { mode, verdict: 'partly', why: `a new public port per destination: direct paths to public and cone-NAT peers (${how}); peers behind symmetric NATs stay on the relay` }
    }
    default:
      return { mode, verdict: 'works', why: 'one public port for every destination: hole punching reaches peers that are not behind symmetric NATs or blocked UDP' }
  }
}

function ice (natType: NatType, turn: boolean): ModeAdvice {
  const mode = 'ice'
  switch (natType) {
    case 'udp-blocked':
      // libjuice has no TCP or TLS TURN, so nothing of WebRTC gets through
      return { mode, verdict: 'no', why: 'WebRTC needs UDP: every connection stays on the gateway\'s libp2p relay (over TCP)' }
    case 'symmetric':
      return turn
        ? { mode, verdict: 'works', why: 'server-reflexive candidates reach cone peers; towards other symmetric NATs traffic goes through the gateway\'s TURN relay' }
        : { mode, verdict: 'partly', why: 'server-reflexive candidates reach cone peers; no gateway runs TURN, so towards other symmetric NATs traffic stays on the libp2p relay' }
    default:
      return turn
        ? { mode, verdict: 'works', why: 'server-reflexive candidates give direct paths; TURN covers peers behind symmetric NATs' }
        : { mode, verdict: 'works', why: 'server-reflexive candidates give direct paths; no gateway runs TURN, so peers behind symmetric NATs stay on the libp2p relay' }
  }
}

const TYPE_NAMES: Record<NatType, string> = {
  'no-nat': 'no NAT (public address)',
  'full-cone': 'full cone',
  'restricted-cone': 'restricted cone',
  'port-restricted-cone': 'port-restricted cone',
  symmetric: 'symmetric',
  'udp-blocked': 'UDP blocked'
}

/** The `natmesh doctor` report: one readable block */
export function formatReport (report: NatReport, setup: GatewaySetup): string {
  const rows: Array<[string, string]> = [
    ['STUN server', formatEndpoint(report.server)],
    ['public address', report.publicAddress != null ? formatEndpoint(report.publicAddress) : 'unknown'],
    ['NAT type', `${TYPE_NAMES[report.natType]} (confidence ${Math.round(report.confidence * 100)}%)`]
  ]
  if (report.mapping != null) {
    const allocation = report.allocation == null ? '' : `, allocation ${report.allocation}${report.allocationDelta != null ? ` (step ${report.allocationDelta})` : ''}`
    rows.push(['mapping', `${report.mapping} (port ${report.portPreserved === true ? 'preserved' : 'not preserved'}${allocation})`])
  }
  if (report.filtering != null) rows.push(['filtering', report.filtering])
  if (report.hairpinning != null) rows.push(['hairpinning', report.hairpinning ? 'yes' : 'no'])
  rows.push(['tests took', `${report.durationMs} ms`])
  const modes = modeAdvice(report, setup).map(advice => `  ${advice.mode.padEnd(14)} ${advice.verdict.padEnd(7)} ${advice.why}`)
  return [
    'NAT type detection',
    ...rows.map(([name, value]) => `  ${name.padEnd(15)} ${value}`),
    ...report.notes.map(note => `  note: ${note}`),
    'Modes',
    ...modes
  ].join('\n')
}

/** The NAT type detection result as the peer reports it; publicAddress as "ip:port" */
export type NatTypeEvent = { event: 'nat-type', natType: string, confidence: number, publicAddress?: string, mapping?: string, filtering?: string, portPreserved?: boolean, allocation?: string, allocationDelta?: number, hairpinning?: boolean, notes: string[] }

/** The peer's `nat-type` event: the report flattened for JSON lines and `key=value` output */
export function natTypeEvent (report: NatReport): NatTypeEvent {
  return {
    event: 'nat-type',
    natType: report.natType,
    confidence: report.confidence,
    ...(report.publicAddress != null ? { publicAddress: formatEndpoint(report.publicAddress) } : {}),
    ...(report.mapping != null ? { mapping: report.mapping } : {}),
    ...(report.filtering != null ? { filtering: report.filtering } : {}),
    ...(report.portPreserved != null ? { portPreserved: report.portPreserved } : {}),
    ...(report.allocation != null ? { allocation: report.allocation } : {}),
    ...(report.allocationDelta != null ? { allocationDelta: report.allocationDelta } : {}),
    ...(report.hairpinning != null ? { hairpinning: report.hairpinning } : {}),
    notes: report.notes
  }
}
