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
  reason?: string
  /** machine-readable cause of a skip or failure */
  code?: HolePunchCode
  direct?: Connection
}

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

  constructor (readonly peer: PeerId, private readonly clock: Clock) {
    this.started = clock.now()
  }

  elapsedMs (): number {
    return this.clock.now() - this.started
  }

  /** closes the account with how it ended */
  outcome (result: Omit<HolePunchOutcome, 'peer' | 'strategy' | 'cost'>): HolePunchOutcome {
    this.cost.ms = this.elapsedMs()
    return { peer: this.peer, strategy: this.strategy, cost: this.cost, ...result }
  }

  success (attempts: number, direct: Connection, relayed: Connection): HolePunchOutcome {
    return this.outcome({ outcome: 'success', attempts, msSinceRelay: direct.timeline.open - relayed.timeline.open, direct })
  }

  ended (attempts: number, err: HolePunchError): HolePunchOutcome {
    return this.outcome({ outcome: err.skipped ? 'skipped' : 'failure', attempts, reason: err.message, code: err.code })
  }
}
