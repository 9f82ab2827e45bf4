import { networkInterfaces } from 'node:os'
import { TypedEventEmitter } from 'main-event'
import { mappingFromObservations } from './nat-mapping.js'
import { NatDetector } from './nat-detector.js'
import { natTypeEvent } from './describe.js'
import type { NatTypeEvent } from './describe.js'
import type { MappingKind, NatMappingProfile } from './mapping-profile.js'
import type { NatReport, StunServerAddress } from './types.js'
import type { UdpEndpoint } from '../transport/index.js'

/** what OwnNat reports: each new NAT report, and a detection that could not run */
export type OwnNatEvent =
  | NatTypeEvent
  | { event: 'error', message: string }

export interface OwnNatInit {
  /** a mapping given by the user (anything but 'auto') is taken as it is; `delta` with 'sequential' */
  configured: { kind: MappingKind | 'auto', delta?: number }
  /** NAT detection against the gateways' STUN servers; absent when it is off */
  detection?: {
    servers: () => StunServerAddress[]
    cacheMs?: number
    timeoutMs: number
  }
  /** our overlay socket's local endpoint, and where the gateways saw it (the last resort of the cascade) */
  observations: () => { listening?: UdpEndpoint, observed: UdpEndpoint[] }
}

export interface OwnNatEvents {
  /** a new NAT report, for components that act on it */
  report: CustomEvent<NatReport>
  event: CustomEvent<OwnNatEvent>
}

/**
 * Everything the peer knows and decides about its own NAT, behind one entry point: the full RFC 5780 report
 * (detected in the background, cached) and the port mapping a hole punch goes by.
 */
export class OwnNat extends TypedEventEmitter<OwnNatEvents> {
  private readonly init: OwnNatInit
  private readonly detector?: NatDetector
  /** the quick mapping-only test run at start-up, for hole punches before the full report is in */
  private probe?: Promise<NatMappingProfile>

  constructor (init: OwnNatInit) {
    super()
    this.init = init
    const detection = init.detection
    if (detection != null) {
      this.detector = new NatDetector({
        servers: detection.servers,
        cacheMs: detection.cacheMs,
        timeoutMs: detection.timeoutMs,
        onReport: (report) => {
          this.safeDispatchEvent('report', { detail: report })
          this.emit(natTypeEvent(report))
        },
        onError: (err) => { this.emit({ event: 'error', message: `NAT type detection failed: ${err.message}` }) }
      })
    }
  }

  start (): void {
    this.detector?.start()
    const detection = this.init.detection
    if (detection != null && this.init.configured.kind === 'auto') {
      this.probe = this.probeMapping(detection)
    }
  }

  /** the quick mapping-only test (its module loaded only when detection runs) */
  private async probeMapping (detection: NonNullable<OwnNatInit['detection']>): Promise<NatMappingProfile> {
    return import('./mapping-probe.js')
      .then(async ({ probeMapping }) => probeMapping(detection.servers(), detection.timeoutMs))
      .catch(() => ({ kind: 'unknown' }))
  }

  stop (): void {
    this.detector?.stop()
  }

  /** Our network changed, and so may our NAT: what we knew is dropped and learnt again (the quick test, then the full report). */
  networkChanged (): void {
    const detection = this.init.detection
    // not started yet (or off): there is nothing learnt to drop
    if (detection == null || this.init.configured.kind !== 'auto' || this.probe == null) return
    this.probe = this.probeMapping(detection)
    this.detector?.invalidate()
  }

  /** The last report, stale or not (a stale one starts a new detection in the background); none when off */
  report (): NatReport | undefined {
    void this.detector?.detect()
    return this.detector?.current()
  }

  /** the last report as it is, starting nothing */
  lastReport (): NatReport | undefined {
    return this.detector?.current()
  }

  /** The report, fresh (detected again once older than the cache time); undefined when detection is off */
  async detect (options: { force?: boolean } = {}): Promise<NatReport | undefined> {
    return this.detector?.detect(options)
  }

  /**
   * How our NAT maps ports, which decides whether a hole punch is plain DCUtR, a birthday punch (one side
   * symmetric) or skipped (both symmetric): as configured; else the full NAT report; else the quick mapping test
   * run at start-up (waited for); else what the gateways' observations tell.
   */
  async mapping (): Promise<NatMappingProfile> {
    const { kind, delta } = this.init.configured
    if (kind !== 'auto') return delta != null ? { kind, delta } : { kind }
    const report = this.report()
    if (report != null) return (await import('./mapping-probe.js')).mappingFromReport(report)
    const probed = await this.probe
    if (probed != null && probed.kind !== 'unknown') return probed
    const { listening, observed } = this.init.observations()
    if (listening == null) return { kind: 'unknown' }
    const hosts = Object.values(networkInterfaces()).flatMap(addrs => addrs ?? []).map(addr => addr.address)
    return mappingFromObservations({ port: listening.port, hosts }, observed)
  }

  private emit (event: OwnNatEvent): void {
    this.safeDispatchEvent('event', { detail: event })
  }
}
