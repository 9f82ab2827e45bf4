import { Counter, Gauge } from 'prom-client'
import type { Registry } from 'prom-client'
import type { TurnService } from './turn-service.js'

const NAMES = ['natmesh_turn_up', 'natmesh_turn_restarts_total', 'natmesh_turn_expired_allocations_ended_total'] as const

/** coturn's state in the gateway's /metrics, read on every scrape */
export class TurnMetrics {
  private readonly registry: Registry

  constructor (registry: Registry, turn: TurnService) {
    this.registry = registry
    const registers = [registry]

    new Gauge({
      name: 'natmesh_turn_up',
      help: '1 while the supervised coturn process runs, 0 while it is down or TURN is disabled',
      registers,
      collect () { this.set(turn.pid == null ? 0 : 1) }
    })
    let counted = 0
    new Counter({
      name: 'natmesh_turn_restarts_total',
      help: 'Times coturn exited and the gateway restarted it',
      registers,
      collect () {
        if (turn.restarts > counted) this.inc(turn.restarts - counted)
        counted = Math.max(counted, turn.restarts)
      }
    })
    new Counter({
      name: 'natmesh_turn_expired_allocations_ended_total',
      help: 'TURN allocations the gateway ended because their credential had expired',
      registers,
      collect () {
        this.reset()
        this.inc(turn.expiredAllocationsEnded)
      }
    })
  }

  unregister (): void {
    for (const name of NAMES) this.registry.removeSingleMetric(name)
  }
}
