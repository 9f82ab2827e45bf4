import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import type { KadDHT, KadDHTComponents } from '@libp2p/kad-dht'
import { StationClaims } from './claims.js'
import { bestStationRecord, STATION_NAMESPACE, verifyStationRecord } from './record.js'
import type { StationRecord } from './record.js'

/** natmesh's own DHT: never the public IPFS one, whose peers could neither relay for us nor be trusted */
export const NATMESH_DHT_PROTOCOL = '/natmesh/kad/1.0.0'

export interface StationDhtInit {
  /** server on gateways (stores records, answers queries), client on peers */
  role: 'server' | 'client'
  /** gateways only: first-come name claims, enforced on every PUT */
  claims?: StationClaims
}

/**
 * kad-dht set up for natmesh: private protocol, our gateways' addresses as they are (a lab or a LAN may use
 * private ones; which addresses a gateway announces is its config's business), and validators and selectors for
 * station records, so a gateway refuses to store a forged, expired or hijacking record and a client ignores one.
 */
export function stationDht (init: StationDhtInit): (components: KadDHTComponents) => KadDHT {
  const claims = init.claims
  return kadDHT({
    protocol: NATMESH_DHT_PROTOCOL,
    clientMode: init.role === 'client',
    peerInfoMapper: passthroughMapper,
    logPrefix: 'natmesh:dht',
    // kad-dht adapts each query's timeout to recent answer times but never below minTimeout: measured in the
    // lab, a loaded 2-core machine answers slower than 1.5 s now and then. A dead gateway costs at most maxTimeout
    networkDialTimeout: { minTimeout: 5000, maxTimeout: 8000 },
    validators: {
      [STATION_NAMESPACE]: async (key, value) => {
        const record = await verifyStationRecord(key, value)
        claims?.admit(record)
      }
    },
    selectors: {
      // kad-dht validated each value already; an index must be returned even if none were valid
      [STATION_NAMESPACE]: async (key, values) => Math.max(0, bestStationRecord(await validRecords(key, values)))
    }
  })
}

/** Verifies each value; an invalid one keeps its slot as undefined (selectors return an index). */
export async function validRecords (key: Uint8Array, values: Uint8Array[]): Promise<Array<StationRecord | undefined>> {
  return Promise.all(values.map(async value => verifyStationRecord(key, value).catch(() => undefined)))
}
