import type { KadDHT } from '@libp2p/kad-dht'
import { bestStationRecord, stationKey, verifyStationRecord } from './record.js'
import type { StationRecord } from './record.js'

export interface StationLookup {
  /** the record believed (see bestStationRecord); undefined when no gateway had a valid one */
  record?: StationRecord
  /** Kademlia hops to the first gateway that answered with a valid record: 1 = a gateway we knew already */
  hops?: number
  /** gateways that answered with a valid record or none */
  answered: number
  /** gateways whose answer was an invalid record (forged, expired, malformed): ignored */
  rejected: number
  /** queries that failed (gateway unreachable, timed out), with the first error */
  failed: number
  firstError?: string
  ms: number
}

export interface LookupOptions {
  signal?: AbortSignal
  /** stop once this many gateways gave a valid record (the records are replicated on the k closest gateways) */
  quorum?: number
}

const DEFAULT_QUORUM = 2
/** kad-dht's QueryError for an answer its validators refused */
const INVALID_RECORD = /invalid record/

/**
 * Looks a station up in the DHT. Collects the records the gateways answer with itself rather than relying on
 * kad-dht's final value: that is only yielded after kad-dht has pushed the winner to every gateway holding another
 * record, and a gateway that refuses it (a name claimed by someone else there) would make the whole query throw.
 */
export async function lookupStation (dht: KadDHT, name: string, options: LookupOptions = {}): Promise<StationLookup> {
  const started = Date.now()
  const key = stationKey(name)
  const quorum = options.quorum ?? DEFAULT_QUORUM
  const enough = new AbortController()
  const signal = options.signal == null ? enough.signal : AbortSignal.any([enough.signal, options.signal])
  /** how many hops away each gateway was found: ones we knew start at 1, ones named in an answer at parent + 1 */
  const depth = new Map<string, number>()
  const found: Array<{ record: StationRecord, hops: number }> = []
  const answered = new Set<string>()
  const rejected = new Set<string>()
  const failed: string[] = []
  const take = async (from: string, value: Uint8Array): Promise<void> => {
    const record = await verifyStationRecord(key, value).catch(() => undefined)
    if (record != null) found.push({ record, hops: depth.get(from) ?? 1 })
  }
  try {
    for await (const event of dht.get(key, { signal })) {
      // kad-dht runs our validator on every answer and turns an invalid record into this error
      if (event.name === 'QUERY_ERROR') {
        if (INVALID_RECORD.test(event.error.message)) rejected.add(event.from.toString())
        else failed.push(`${event.from.toString()}: ${event.error.message}`)
      }
      if (event.name !== 'PEER_RESPONSE') continue
      const from = event.from.toString()
      if (answered.has(from)) continue
      answered.add(from)
      const hops = depth.get(from) ?? 1
      for (const closer of event.closer) {
        const id = closer.id.toString()
        if (!depth.has(id)) depth.set(id, hops + 1)
      }
      if (event.record != null) await take(from, event.record.value)
      if (found.length >= quorum) {
        enough.abort()
        break
      }
    }
  } catch (err) {
    // the query may end in an error after valid answers came in (see above); without any, it is the answer
    if (found.length === 0 && !enough.signal.aborted) throw err
  }
  const best = found[bestStationRecord(found.map(f => f.record))]
  return { record: best?.record, hops: best?.hops, answered: answered.size, rejected: rejected.size, failed: failed.length, firstError: failed[0], ms: Date.now() - started }
}
