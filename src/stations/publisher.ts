import type { KadDHT } from '@libp2p/kad-dht'
import type { Logger, PeerId, PrivateKey } from '@libp2p/interface'
import type { Multiaddr } from '@multiformats/multiaddr'
import { signStationRecord, stationKey } from './record.js'
import type { StationRecord } from './record.js'

/** What the publisher reports; gateways: how many of the DHT's closest gateways stored the record */
export type StationEvent =
  | { event: 'station-published', name: string, seq: number, gateways: number, relayAddrs: string[] }
  | { event: 'station-withdrawn', name: string, gateways: number }

export interface StationPublisherInit {
  names: string[]
  dht: KadDHT
  peerId: PeerId
  privateKey: PrivateKey
  mode: string
  /** how long a published record lives; it is republished halfway */
  ttlMs: number
  /** the relay addresses over all gateways holding a reservation for us */
  relayAddresses: () => Multiaddr[]
  log: Logger
  emit: (event: StationEvent) => void
}

/** wait this long after a reservation change before republishing, so changes on several gateways go out as one */
const SETTLE_MS = 300
/** a publication no gateway took is retried after this long */
const RETRY_MS = 3000
/**
 * a withdrawal on shutdown gets this long; a station that can't withdraw simply expires. A put first asks the DHT for
 * the closest gateways, and that query waits out every dead gateway still in the routing table (5 s at least)
 */
const WITHDRAW_TIMEOUT_MS = 10_000

/**
 * Publishes this peer's stations: a signed record per name with the relay addresses of every gateway holding a
 * reservation for it, republished when those change and halfway through the record's life, and withdrawn
 * (a signed tombstone that outlives the last record) on a clean shutdown.
 */
export class StationPublisher {
  private readonly init: StationPublisherInit
  private timer?: NodeJS.Timeout
  private seq = 0
  private lastExpiresAt = 0
  private running = false
  /** counts changes, so a publication that was overtaken by one is followed by another */
  private changes = 0

  constructor (init: StationPublisherInit) {
    this.init = init
  }

  start (): void {
    this.running = true
    this.schedule(0)
  }

  /** the relay addresses changed: republish soon */
  changed (): void {
    this.changes++
    if (this.running) this.schedule(SETTLE_MS)
  }

  /** Stops republishing and withdraws every station; resolves when the gateways took it or time ran out. */
  async stop (): Promise<void> {
    this.running = false
    clearTimeout(this.timer)
    if (this.seq === 0) return
    const signal = AbortSignal.timeout(WITHDRAW_TIMEOUT_MS)
    await Promise.all(this.init.names.map(async name => {
      const accepted = await this.put({ ...this.record(name, []), withdrawn: true, expiresAt: Math.max(this.lastExpiresAt, Date.now() + 1000) }, signal)
      this.init.emit({ event: 'station-withdrawn', name, gateways: accepted })
    }))
  }

  private schedule (delayMs: number): void {
    clearTimeout(this.timer)
    this.timer = setTimeout(() => { void this.publish() }, delayMs)
  }

  private async publish (): Promise<void> {
    const changes = this.changes
    const relayAddrs = this.init.relayAddresses().map(String)
    // no reservation (yet, or for the moment): the last record keeps pointing where we will most likely be again
    if (relayAddrs.length === 0) return
    const expiresAt = Date.now() + this.init.ttlMs
    const signal = AbortSignal.timeout(Math.min(this.init.ttlMs / 2, 30_000))
    const results = await Promise.all(this.init.names.map(async name => {
      const record = { ...this.record(name, relayAddrs), expiresAt }
      const gateways = await this.put(record, signal)
      this.init.emit({ event: 'station-published', name, seq: record.seq, gateways, relayAddrs })
      return gateways
    }))
    this.lastExpiresAt = expiresAt
    if (!this.running) return
    if (this.changes !== changes) this.schedule(SETTLE_MS)
    else this.schedule(results.every(n => n > 0) ? this.init.ttlMs / 2 : RETRY_MS)
  }

  private record (name: string, relayAddrs: string[]): StationRecord {
    // time-based, so a restarted owner's records still outrank the ones it published before
    this.seq = Math.max(this.seq + 1, Date.now())
    return { name, peerId: this.init.peerId.toString(), relayAddrs, mode: this.init.mode, seq: this.seq, expiresAt: 0, withdrawn: false }
  }

  /** Puts a record into the DHT; returns how many gateways stored it. */
  private async put (record: StationRecord, signal: AbortSignal): Promise<number> {
    let stored = 0
    try {
      const value = await signStationRecord(record, this.init.privateKey)
      for await (const event of this.init.dht.put(stationKey(record.name), value, { signal })) {
        if (event.name === 'PEER_RESPONSE' && event.messageName === 'PUT_VALUE') stored++
      }
    } catch (err) {
      this.init.log('publishing station %s stopped early - %s', record.name, err instanceof Error ? err.message : String(err))
    }
    return stored
  }
}
