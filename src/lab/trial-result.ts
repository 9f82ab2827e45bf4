import type { NatFlavour } from './nat.js'
import type { JsonEvent } from './trial-process.js'

export type TrialPath = 'direct' | 'relay' | 'none'
export type GatewayTransport = 'udx' | 'tcp'

export interface TrialResult {
  /** 1-based */
  trial: number
  a: NatFlavour
  b: NatFlavour
  /** A pinged B over the relayed connection */
  relayOk: boolean
  /** A pinged B over a direct (hole-punched) connection */
  directOk: boolean
  path: TrialPath
  /** from the relayed connection to the direct one: A's successful hole-punch msSinceRelay, else B's */
  msRelayToDirect?: number
  /** outcome 'none': no peer reported a hole punch (e.g. relay-only mode) */
  holePunch: {
    outcome: 'success' | 'failure' | 'skipped' | 'none'
    attempts: number
    reason?: string
    /** why it was skipped or failed, as the peers' hole-punch events say (B's, else A's last): NO_UDP_PATH, TIMEOUT... */
    code?: string
    /** dcutr, birthday or skip, as the peers chose it */
    strategy?: string
    /** what the punch cost both peers together: extra sockets, and probe datagrams (probes and sprays) */
    cost?: { sockets: number, probes: number }
  }
  /** how each peer reached the gateway; null when it never did */
  gatewayTransport: { a: GatewayTransport | null, b: GatewayTransport | null }
  relayRttMs?: number
  directRttMs?: number
  /** wall time of the trial: conntrack flush, both peers' start, the exchange, and their shutdown */
  durationMs: number
  /** where the time went: flushing conntrack and B's start up to its reservation, A's start up to the verdict, the peers' shutdown */
  phasesMs: { bReady?: number, aVerdict?: number, stop: number }
  /** what went wrong (no relay connectivity, a timeout, a crash), with the tail of each process's stderr */
  error?: string
}

/** What a trial saw, from whichever processes ran it: the lab's own daemons, or containers' event files. */
export interface TrialObservation {
  trial: number
  a: NatFlavour
  b: NatFlavour
  /** the dialling peer's events, in order; empty when it never ran */
  aEvents: readonly JsonEvent[]
  /** the dialled peer's events */
  bEvents: readonly JsonEvent[]
  /** why the trial ended without a verdict, or with A's error */
  failure?: string
  durationMs: number
  phasesMs: TrialResult['phasesMs']
  /** stderr tails (or other context) appended to the error, one block each */
  context: ReadonlyArray<{ title: string, text: string }>
}

/** A trial's result from its events: whether each path worked, the hole punch's outcome, and what went wrong. */
export function trialResult (o: TrialObservation): TrialResult {
  const { aEvents, bEvents, failure } = o
  const aPeerId = aEvents.find((e) => e.event === 'started')?.peerId
  const relayPing = aEvents.find((e) => e.event === 'ping' && e.path === 'relay')
  const directPing = aEvents.find((e) => e.event === 'ping' && e.path === 'direct')
  const relayOk = relayPing !== undefined
  const directOk = directPing !== undefined
  const aPunches = aEvents.filter((e) => e.event === 'hole-punch')
  const bPunches = bEvents.filter((e) => e.event === 'hole-punch' && (aPeerId === undefined || e.peer === aPeerId))
  const aSuccess = aPunches.find((e) => e.outcome === 'success')
  const bSuccess = bPunches.find((e) => e.outcome === 'success')
  const msRelayToDirect = num(aSuccess?.msSinceRelay) ?? num(bSuccess?.msSinceRelay)
  const bFinal = bPunches[0]
  const aLast = aPunches.at(-1)

  let holePunch: TrialResult['holePunch']
  if (aSuccess !== undefined || bSuccess !== undefined) {
    holePunch = { outcome: 'success', attempts: num(bSuccess?.attempts) ?? Math.max(aPunches.length, 1) }
  } else if (bFinal !== undefined || aLast !== undefined) {
    const outcome = (bFinal ?? aLast)?.outcome === 'skipped' ? 'skipped' : 'failure'
    const reason = [bFinal?.reason, aLast?.reason].filter((r) => typeof r === 'string' && r !== '').map((r) => String(r))
    const code = [bFinal?.code, aLast?.code].find((c) => typeof c === 'string' && c !== '')
    holePunch = {
      outcome,
      attempts: num(bFinal?.attempts) ?? aPunches.length,
      ...(reason.length > 0 ? { reason: reason.join('; ') } : {}),
      ...(typeof code === 'string' ? { code } : {})
    }
  } else {
    holePunch = { outcome: 'none', attempts: 0 }
  }
  const punches = [...aPunches, ...bPunches]
  const strategy = punches.map((e) => e.strategy).find((k) => typeof k === 'string')
  if (typeof strategy === 'string') holePunch.strategy = strategy
  const costs = punches.map((e) => e.cost).filter((c): c is Record<string, unknown> => typeof c === 'object' && c !== null)
  if (costs.length > 0) {
    const total = (key: string): number => costs.reduce((sum, c) => sum + (num(c[key]) ?? 0), 0)
    holePunch.cost = { sockets: total('sockets'), probes: total('probes') + total('sprays') }
  }

  const error = failure ?? (relayOk ? undefined : 'no relay connectivity (no ping over the relay)')
  const result: TrialResult = {
    trial: o.trial,
    a: o.a,
    b: o.b,
    relayOk,
    directOk,
    path: directOk ? 'direct' : relayOk ? 'relay' : 'none',
    holePunch,
    gatewayTransport: { a: transportOf(aEvents), b: transportOf(bEvents) },
    durationMs: o.durationMs,
    phasesMs: o.phasesMs
  }
  if (msRelayToDirect !== undefined) result.msRelayToDirect = msRelayToDirect
  const relayRtt = num(relayPing?.rttMs)
  const directRtt = num(directPing?.rttMs)
  if (relayRtt !== undefined) result.relayRttMs = round2(relayRtt)
  if (directRtt !== undefined) result.directRttMs = round2(directRtt)
  if (error !== undefined) {
    result.error = [error, ...o.context.map((c) => `--- ${c.title} ---\n${c.text}`)].join('\n')
  }
  return result
}

function transportOf (events: readonly JsonEvent[]): GatewayTransport | null {
  const t = events.filter((e) => e.event === 'gateway-connected').at(-1)?.transport
  return t === 'udx' || t === 'tcp' ? t : null
}

function num (v: unknown): number | undefined {
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined
}

function round2 (v: number): number {
  return Math.round(v * 100) / 100
}