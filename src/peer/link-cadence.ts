import type { Connection } from '@libp2p/interface'
import { PATH_CADENCE } from '../transport/index.js'
import type { PathCadence, UdxPath } from '../transport/index.js'

export interface LinkCadenceInit {
  /** udx's view of a connection; undefined for one not over the UDP overlay */
  pathOf: (connection: Connection) => UdxPath | undefined
  /** this peer's gateway connections right now */
  gatewayConnections: () => Connection[]
  /** how long gateway links stay active after the last path to another peer closed (rule 2); default 30 s */
  holdMs?: number
}

const HOLD_MS = 30_000

/**
 * The cadence of a peer's gateway links over the UDP overlay (see PATH_CADENCE):
 *
 * 1. While this peer has no path to another peer, its gateway links run idle: reservations, DHT records and
 *    RTTs need nothing faster, and a gateway holding 10,000 idle peers answers 1,000 probes a second, not 13,000.
 * 2. While it has one (relayed or direct), and for `holdMs` after the last one closed, they run active: a relayed
 *    session's gateway, a fallback through it after a lost direct path, and `gateway-lost` are then noticed
 *    within 2.5 s. The hold spares a peer that opens sessions one after another from flapping.
 * 3. A gateway link that opens takes the cadence of the moment (udx starts every dial active).
 */
export class LinkCadence {
  private readonly init: LinkCadenceInit
  private readonly holdMs: number
  private current: PathCadence = PATH_CADENCE.idle
  private holdTimer?: NodeJS.Timeout

  constructor (init: LinkCadenceInit) {
    this.init = init
    this.holdMs = init.holdMs ?? HOLD_MS
  }

  /** how many paths to other peers this peer has now (rules 1 and 2) */
  peerPaths (count: number): void {
    if (count > 0) {
      clearTimeout(this.holdTimer)
      this.holdTimer = undefined
      this.set(PATH_CADENCE.active)
    } else if (this.current === PATH_CADENCE.active && this.holdTimer == null) {
      this.holdTimer = setTimeout(() => {
        this.holdTimer = undefined
        this.set(PATH_CADENCE.idle)
      }, this.holdMs)
      this.holdTimer.unref()
    }
  }

  /** rule 3 */
  linked (connection: Connection): void {
    this.init.pathOf(connection)?.setCadence(this.current)
  }

  get cadence (): PathCadence {
    return this.current
  }

  stop (): void {
    clearTimeout(this.holdTimer)
    this.holdTimer = undefined
  }

  private set (cadence: PathCadence): void {
    if (cadence === this.current) return
    this.current = cadence
    for (const connection of this.init.gatewayConnections()) this.linked(connection)
  }
}
