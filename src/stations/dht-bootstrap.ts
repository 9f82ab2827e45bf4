import type { KadDHT, SingleKadDHT } from '@libp2p/kad-dht'
import type { Libp2p, Logger } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'

export interface DhtBootstrapInit {
  node: Libp2p
  dht: KadDHT
  /** other gateways; one that answers is enough, the DHT finds the rest */
  addresses: Multiaddr[]
  /** how often to check that the routing table is not empty */
  checkIntervalMs: number
  log: Logger
}

/**
 * Joins a gateway to the station DHT: dials the bootstrap gateways whenever its routing table is empty (at start,
 * and after every other gateway it knew went away). Once one answers, kad-dht's self-queries and table refreshes
 * find the other gateways, and they learn about this one from its queries.
 */
export class DhtBootstrap {
  private readonly init: DhtBootstrapInit
  private timer?: NodeJS.Timeout
  private running = false

  constructor (init: DhtBootstrapInit) {
    this.init = init
  }

  start (): void {
    if (this.init.addresses.length === 0) return
    this.running = true
    const check = (): void => {
      void this.check().finally(() => {
        if (this.running) this.timer = setTimeout(check, this.init.checkIntervalMs)
      })
    }
    check()
  }

  stop (): void {
    this.running = false
    clearTimeout(this.timer)
  }

  private async check (): Promise<void> {
    // kad-dht's instance has a routing table; its factory's return type does not say so
    if ((this.init.dht as SingleKadDHT).routingTable.size > 0) return
    await Promise.all(this.init.addresses.map(async address => {
      try {
        await this.init.node.dial(address, { signal: AbortSignal.timeout(this.init.checkIntervalMs) })
      } catch (err) {
        this.init.log('bootstrap gateway %a did not answer - %s', address, err instanceof Error ? err.message : String(err))
      }
    }))
  }
}
