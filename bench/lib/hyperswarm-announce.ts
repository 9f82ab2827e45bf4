/**
 * A hyperswarm node for bench/footprint.ts: joins one topic as a server on the testnet given as argv[2] (JSON
 * [{host, port}]), prints {"event":"announced"} once the announce is flushed to the DHT, then idles until killed.
 */
import { randomBytes } from 'node:crypto'
import Hyperswarm from 'hyperswarm'

const bootstrap = JSON.parse(process.argv[2] ?? '[]') as Array<{ host: string, port: number }>
const swarm = new Hyperswarm({ bootstrap })
await swarm.join(randomBytes(32), { server: true, client: false }).flushed()
console.log(JSON.stringify({ event: 'announced' }))
process.on('SIGTERM', () => { void swarm.destroy().finally(() => process.exit(0)) })
