import { MemoryDatastore } from 'datastore-core'
import type { AbortOptions } from '@libp2p/interface'

type Key = Parameters<MemoryDatastore['put']>[0]

/**
 * An in-memory datastore that stores a copy of each value in a buffer of its own size. kad-dht hands over records
 * that are views into larger buffers (Node's 8 KiB allocation slabs): kept as they were, each record of under 1 KiB
 * held on to several KiB (measured by bench/lookup.ts: 7 KiB per stored record).
 */
export class CompactMemoryDatastore extends MemoryDatastore {
  override put (key: Key, value: Uint8Array, options?: AbortOptions): ReturnType<MemoryDatastore['put']> {
    return super.put(key, new Uint8Array(value), options)
  }
}
