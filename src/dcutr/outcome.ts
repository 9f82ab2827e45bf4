import type { Connection, PeerId } from '@libp2p/interface'
import type { BirthdayCost } from './birthday.js'
import type { Clock } from './clock.js'
import type { HolePunchCode, HolePunchError } from './errors.js'
import type { PunchStrategy } from './strategy.js'

export interface HolePunchOutcome {
  peer: PeerId
  outcome: 'success' | 'failure' | 'skipped'
  attempts: number
  /** how the last attempt went about it */
  strategy?: PunchStrategy['kind']
  /** what the attempts cost: extra sockets, probes and sprayed datagrams (birthday), and time in ms */
  cost?: PunchCost
  /** from the relayed connection opening to the direct connection opening */
  msSinceRelay?: number
  /** a successful punch's steps, each in ms since the relayed connection opened on this side (see PunchPhase) */
  phases?: Partial<Record<PunchPhase, number>>
  reason?: string
  /** machine-readable cause of a skip or failure */
  code?: HolePunchCode
  direct?: Connection
}

/**
 * The steps of one attempt, in order: the DCUtR stream negotiated on the relayed connection (initiator only), the
 * responder's CONNECT read (initiator) or the initiator's read (responder: its half of the punch starts once it
 * has answered), SYNC sent (initiator: its half starts now) or read (responder: only the LAN candidates wait for
 * it), the remote overlay socket answering a direct dial's HELLO, and the direct connection (its udx stream;
 * `msSinceRelay`, Noise still to come). A direct connection the circuit's early dials made has `direct` alone.
 */
export type PunchPhase = 'stream' | 'connect' | 'sync' | 'answered' | 'direct'

export interface PunchCost extends BirthdayCost {
  ms: number
}

export interface HolePuncherEvents {
  'hole-punch': CustomEvent<HolePunchOutcome>
}

/** One punch's running account, over all its attempts: the strategy last chosen and what it cost so far. */
export class PunchTally {
  readonly cost: PunchCost = { sockets: 0, probes: 0, sprays: 0, ms: 0 }
  strategy?: PunchStrategy['kind']
  private readonly started: number
  private phases: Partial<Record<PunchPhase, number>> = {}

  constructor (readonly peer: PeerId, private readonly clock: Clock) {
    this.started = clock.now()
  }

  elapsedMs (): number {
    return this.clock.now() - this.started
  }

  /** a new attempt: its phases start over */
  newAttempt (): void {
    this.phases = {}
  }

  /** notes when `phase` of the current attempt was first done (wall clock, as connection timelines are) */
  mark (phase: PunchPhase, relayed: Pick<Connection, 'timeline'>): void {
    this.phases[phase] ??= Date.now() - relayed.timeline.open
  }

  /** closes the account with how it ended */
  outcome (result: Omit<HolePunchOutcome, 'peer' | 'strategy' | 'cost'>): HolePunchOutcome {
    this.cost.ms = this.elapsedMs()
    return { peer: this.peer, strategy: this.strategy, cost: this.cost, ...result }
  }

  /** `relayed`: the relayed connection, or its timeline where the connection is still in its handshake */
  success (attempts: number, direct: Connection, relayed: Pick<Connection, 'timeline'>): HolePunchOutcome {
    const msSinceRelay = direct.timeline.open - relayed.timeline.open
    return this.outcome({ outcome: 'success', attempts, msSinceRelay, phases: { ...this.phases, direct: msSinceRelay }, direct })
  }

  ended (attempts: number, err: HolePunchError): HolePunchOutcome {
    return this.outcome({ outcome: err.skipped ? 'skipped' : 'failure', attempts, reason: err.message, code: err.code })
  }
}
