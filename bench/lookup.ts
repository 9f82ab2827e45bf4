// Station lookup benchmark: 3, 10 and 30 gateways in this process on loopback (test/helpers/gateway-cluster.ts), every
// gateway but the first told only of the first. A peer on gateway 0 publishes STATIONS stations; a peer on the last
// gateway looks each up LOOKUPS_PER_STATION times: latency (median, p95) and Kademlia hops to the first valid answer.
// Then gateway memory per stored record: RECORDS records put into the 3-gateway DHT, growth of the JS heap and of
// buffers outside it, divided by the copies stored.
// Run after building:  tsc -p tsconfig.json && node --expose-gc bench/lookup.ts   (npm run bench:lookup)
// The last line of stdout is one JSON object:
//   { "bench": "lookup", "sizes": { "3": { "medianMs", "p95Ms", "hopsMedian", "hopsMax", "lookups" }, ... },
//     "memoryPerRecordBytes": n, "recordBytes": n }
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { KadDHT } from '@libp2p/kad-dht'
import { signStationRecord, stationKey } from '../dist/stations/record.js'
import { GatewayCluster } from '../test/helpers/gateway-cluster.ts'
import { quantile } from '../test/helpers/session-lab.ts'
import { waitFor } from '../test/helpers/wait-for.ts'

const SIZES = [3, 10, 30]
const STATIONS = 10
const LOOKUPS_PER_STATION = 5
const RECORDS = 2000
/** records put before the heap is measured, so lazily built state (buffers, caches, connections) is already there */
const WARM_UP_RECORDS = 300
const PUT_CONCURRENCY = 16

const gc = (globalThis as { gc?: () => void }).gc
if (gc == null) {
  process.stderr.write('bench/lookup: run with node --expose-gc (npm run bench:lookup does)\n')
  process.exit(1)
}

const routingTableSize = (dht: KadDHT): number => (dht as unknown as { routingTable: { size: number } }).routingTable.size

interface SizeResult { medianMs: number | null, p95Ms: number | null, hopsMedian: number | null, hopsMax: number | null, lookups: number, notFound: number }

async function measureSize (size: number): Promise<SizeResult> {
  const cluster = new GatewayCluster()
  try {
    const started = Date.now()
    await cluster.start(size)
    // every gateway knows at least min(size - 1, 10) others before the peers come
    const enough = Math.min(size - 1, 10)
    await waitFor(() => cluster.gateways.every(g => routingTableSize(g.node.services.dht) >= enough), 60_000, 'gateways to find each other')
    const names = Array.from({ length: STATIONS }, (_, i) => `bench-${size}-${i}`)
    const publisher = await cluster.startPeer('publisher', { stations: names, gateways: cluster.addrs(0), maxGateways: 1 })
    await waitFor(() => names.every(name => cluster.eventsOf(publisher, 'station-published').some(e => e.name === name && e.gateways > 0)), 60_000, 'stations published')
    const looker = await cluster.startPeer('looker', { gateways: cluster.addrs(size - 1), maxGateways: 1 })
    await waitFor(() => looker.relayAddresses().length > 0, 30_000, 'looker reservation')
    process.stdout.write(`${size} gateways: up and published in ${Date.now() - started} ms\n`)
    const ms: number[] = []
    const hops: number[] = []
    let notFound = 0
    for (let round = 0; round < LOOKUPS_PER_STATION; round++) {
      for (const name of names) {
        const found = await looker.lookup(name, { signal: AbortSignal.timeout(15_000) })
        if (found.record == null) { notFound++; continue }
        ms.push(found.ms)
        if (found.hops != null) hops.push(found.hops)
      }
    }
    const result = { medianMs: quantile(ms, 0.5), p95Ms: quantile(ms, 0.95), hopsMedian: quantile(hops, 0.5), hopsMax: quantile(hops, 1), lookups: ms.length, notFound }
    process.stdout.write(`${size} gateways: ${result.lookups} lookups, median ${result.medianMs} ms, p95 ${result.p95Ms} ms, hops median ${result.hopsMedian} max ${result.hopsMax}, not found ${notFound}\n`)
    return result
  } finally {
    await cluster.stop()
  }
}

async function heapAfterGc (): Promise<number> {
  for (let i = 0; i < 3; i++) {
    gc?.()
    await new Promise(resolve => setTimeout(resolve, 50))
  }
  // the records' bytes live in ArrayBuffers, outside the JS heap
  const { heapUsed, external } = process.memoryUsage()
  return heapUsed + external
}

/** Heap growth per stored copy of a record: gateways' copies and claims, plus the putting client's own copy. */
async function measureMemory (): Promise<{ memoryPerRecordBytes: number, recordBytes: number }> {
  const cluster = new GatewayCluster()
  try {
    await cluster.start(3)
    await waitFor(() => cluster.gateways.every(g => routingTableSize(g.node.services.dht) >= 2), 60_000, 'gateways to find each other')
    const client = await cluster.startPeer('client', { gateways: cluster.addrs(0), maxGateways: 3 })
    await waitFor(() => client.relayAddresses().length > 0, 30_000, 'client reservation')
    const key = await generateKeyPair('Ed25519')
    const peerId = peerIdFromPrivateKey(key).toString()
    const gateway = cluster.gateways[0]?.node.peerId.toString() ?? ''
    const records = await Promise.all(Array.from({ length: WARM_UP_RECORDS + RECORDS }, async (_, i) => {
      const name = `mem-${i}`
      const relayAddrs = [`/ip4/203.0.113.1/udp/4001/udx/p2p/${gateway}/p2p-circuit/p2p/${peerId}`, `/ip4/203.0.113.1/tcp/4001/p2p/${gateway}/p2p-circuit/p2p/${peerId}`]
      return { name, value: await signStationRecord({ name, peerId, relayAddrs, mode: 'opportunistic', seq: 1, expiresAt: Date.now() + 3_600_000, withdrawn: false }, key) }
    }))
    const putAll = async (batch: typeof records): Promise<number> => {
      let copies = 0
      const queue = [...batch]
      await Promise.all(Array.from({ length: PUT_CONCURRENCY }, async () => {
        for (let next = queue.pop(); next != null; next = queue.pop()) {
          for await (const event of client.node.services.dht.put(stationKey(next.name), next.value, { signal: AbortSignal.timeout(30_000) })) {
            if (event.name === 'PEER_RESPONSE' && event.messageName === 'PUT_VALUE') copies++
          }
        }
      }))
      return copies
    }
    await putAll(records.slice(0, WARM_UP_RECORDS))
    await new Promise(resolve => setTimeout(resolve, 2000))
    const before = await heapAfterGc()
    const copies = await putAll(records.slice(WARM_UP_RECORDS))
    await new Promise(resolve => setTimeout(resolve, 2000))
    const after = await heapAfterGc()
    // the client keeps a copy of each record it puts, as a gateway does
    const stored = copies + RECORDS
    const memoryPerRecordBytes = Math.round((after - before) / stored)
    const recordBytes = records[0]?.value.byteLength ?? 0
    process.stdout.write(`memory: ${RECORDS} records of ${recordBytes} bytes, ${copies} gateway copies + ${RECORDS} client copies; heap and buffers +${Math.round((after - before) / 1024)} KiB, ${memoryPerRecordBytes} bytes per stored record\n`)
    return { memoryPerRecordBytes, recordBytes }
  } finally {
    await cluster.stop()
  }
}

const sizes: Record<string, SizeResult> = {}
// `--memory-only` skips the lookups (they take minutes at 30 gateways)
if (!process.argv.includes('--memory-only')) for (const size of SIZES) sizes[String(size)] = await measureSize(size)
const memory = await measureMemory()
process.stdout.write(JSON.stringify({ bench: 'lookup', sizes, ...memory }) + '\n')
process.exit(0)
