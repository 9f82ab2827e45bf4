/**
 * Stock js-libp2p clients in a process of their own: libp2p + @libp2p/tcp + noise + yamux + the circuit relay v2
 * transport + identify, and nothing of natmesh (its /udx multiaddr codec must not be registered here, as it
 * would be in any process that imports natmesh). Tests and benchmarks drive it over stdin/stdout, one JSON object
 * a line each way; every answer carries the `id` of its command.
 *
 *   {"id":1,"cmd":"reserve","relay":"/ip4/…/tcp/…/p2p/<gw>","count":10,"host":"127.0.0.2"}
 *      → {"id":1,"ok":true,"peers":[{"peerId":…,"circuit":"…/p2p-circuit/p2p/<peer>"}],"failed":0,"failedAttempts":0,"errors":[],"ms":…}
 *      (`concurrency` nodes, default 32, start at a time, each tried up to `attempts` times, default 1; `ms` is
 *      until the last one holds its reservation or gave up; `failed` gave up, `failedAttempts` were retried)
 *   {"id":2,"cmd":"echo","target":"<circuit address>","bytes":65536}   (from this process's first node)
 *      → {"id":2,"ok":true,"equal":true,"bytes":65536}
 *   {"id":3,"cmd":"send","target":"<circuit address>","bytes":1048576} (write all, close; no reading)
 *      → {"id":3,"ok":true,"closeError":"…"|undefined,"resetError":"…"|undefined}
 *   {"id":4,"cmd":"stop","count":5}   → {"id":4,"ok":true,"stopped":5}   (the oldest nodes leave)
 *   {"id":5,"cmd":"held"}             → {"id":5,"ok":true,"held":…}      (nodes with a relay address now)
 *
 *   node test/helpers/stock-libp2p.ts          (STOCK_KNOWS_UDX=1, CLIENT_PROFILE=natmesh: see below)
 *
 * CLIENT_PROFILE=natmesh makes each node link to its gateway the way a natmesh peer does (src/peer/peer-node.ts):
 * over the UDP overlay with an idle peer's gateway-link cadence (src/peer/link-cadence.ts), a peer's rare yamux
 * pings and no ping streams, no libp2p connection monitor (the relay address given must then be the gateway's
 * /udx one). The reservation is still made by the stock relay transport: what a
 * gateway pays for an idle natmesh peer is its connection's keepalives, not how the peer asked for its slot.
 */
import { randomBytes } from 'node:crypto'
import { createInterface } from 'node:readline'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { circuitRelayTransport } from '@libp2p/circuit-relay-v2'
import { identify } from '@libp2p/identify'
import { tcp } from '@libp2p/tcp'
import type { TCPSocketOptions } from '@libp2p/tcp'
import { multiaddr, registry } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import type { Libp2pOptions } from 'libp2p'
import type { Libp2p, Stream } from '@libp2p/interface'
import { ECHO_PROTOCOL, SINK_PROTOCOL } from './stock-protocols.ts'
import type { UdxPaths } from '../../src/transport/udx-paths.ts'

type Command =
  | { id: number, cmd: 'reserve', relay: string, count: number, host: string, concurrency?: number, attempts?: number }
  | { id: number, cmd: 'echo', target: string, bytes: number }
  | { id: number, cmd: 'send', target: string, bytes: number }
  | { id: number, cmd: 'stop', count: number }
  | { id: number, cmd: 'held' }

const nodes: Libp2p[] = []
/** a node that holds no reservation this long after it started gives up (and may be tried again) */
const RESERVE_TIMEOUT_MS = 15_000

// STOCK_KNOWS_UDX=1 teaches the multiaddr parser natmesh's /udx code, so a benchmark can measure a gateway from
// before it stopped listing /udx to clients that cannot parse it
if (process.env.STOCK_KNOWS_UDX === '1') registry.addProtocol({ code: 0x3f_4e_58, name: 'udx', size: 0 })

/** what a node links to its gateway with: stock TCP, or (CLIENT_PROFILE=natmesh) natmesh's overlay settings */
interface Profile extends Pick<Libp2pOptions, 'transports' | 'connectionMonitor' | 'connectionGater' | 'services'> {
  listen: (host: string, relay: string) => string[]
  /** yamux's ping interval (libp2p's default: 30 s) */
  yamuxPingMs?: number
  /** what a started node does on its gateway connection */
  started?: (node: Libp2p, relay: string) => Promise<void>
}
const profile: Profile = process.env.CLIENT_PROFILE === 'natmesh'
  ? await natmeshProfile()
  : { listen: (host, relay) => [`/ip4/${host}/tcp/0`, `${relay}/p2p-circuit`], transports: [] }

async function natmeshProfile (): Promise<Profile> {
  const { PATH_CADENCE, udxOverlay, udxPaths } = await import('../../dist/transport/index.js')
  const { YAMUX_PING_MS } = await import('../../dist/core/ping-path.js')
  return {
    // the relay transport's listen filter takes no /udx relay address: it reserves on whichever relay it is
    // connected to instead
    listen: (host) => [`/ip4/${host}/udp/0/udx`, '/p2p-circuit'],
    transports: [udxOverlay({ ...PATH_CADENCE.active })],
    services: { udxPaths: udxPaths() },
    yamuxPingMs: YAMUX_PING_MS,
    connectionMonitor: { enabled: false },
    connectionGater: { denyDialMultiaddr: () => false },
    // a peer with no path to another peer: its gateway link runs idle (src/peer/link-cadence.ts, rule 1), and
    // the gateway pool reads the link's RTT from udx instead of pinging
    started: async (node, relay) => {
      const connection = await node.dial(multiaddr(relay), { signal: AbortSignal.timeout(10_000) })
      const paths = node.services.udxPaths as UdxPaths
      paths.pathOf(connection)?.setCadence(PATH_CADENCE.idle)
    }
  }
}

function circuitAddress (node: Libp2p): string | undefined {
  return node.getMultiaddrs().map(String).find(ma => ma.includes('/p2p-circuit'))
}

async function startNode (relay: string, host: string): Promise<Libp2p> {
  // connections leave from `host` too, so the gateway sees that source IP (@libp2p/tcp hands dialOpts to
  // net.connect, whose localAddress its type does not list)
  const dialOpts: TCPSocketOptions & { localAddress: string } = { localAddress: host }
  const { listen, transports = [], services = {}, yamuxPingMs, started: _started, ...settings } = profile
  const node = await createLibp2p({
    addresses: { listen: listen(host, relay) },
    transports: [...transports, tcp({ dialOpts }), circuitRelayTransport()],
    ...settings,
    connectionEncrypters: [noise()],
    streamMuxers: [yamux(yamuxPingMs != null ? { keepAliveInterval: yamuxPingMs } : {})],
    services: { identify: identify(), ...services },
    start: false
  })
  await node.handle(ECHO_PROTOCOL, async (stream) => {
    for await (const chunk of stream) {
      if (!stream.send(chunk)) await stream.onDrain()
    }
    await stream.close()
  }, { runOnLimitedConnection: true })
  await node.handle(SINK_PROTOCOL, async (stream) => {
    try {
      for await (const _chunk of stream) {}
      await stream.close()
    } catch {}
  }, { runOnLimitedConnection: true })
  try {
    await node.start()
    await profile.started?.(node, relay)
    if (circuitAddress(node) == null) await reserved(node)
  } catch (err) {
    await node.stop()
    throw err
  }
  return node
}

/** resolves once `node` lists a relay address; a node that reserves on a connected relay may never do so */
async function reserved (node: Libp2p): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => {
      node.removeEventListener('self:peer:update', onUpdate)
      reject(new Error(`no relay reservation within ${RESERVE_TIMEOUT_MS} ms`))
    }, RESERVE_TIMEOUT_MS)
    const onUpdate = (): void => {
      if (circuitAddress(node) == null) return
      clearTimeout(timer)
      node.removeEventListener('self:peer:update', onUpdate)
      resolve()
    }
    node.addEventListener('self:peer:update', onUpdate)
  })
}

async function openStream (protocol: string, target: string): Promise<Stream> {
  const node = nodes[0]
  if (node == null) throw new Error('no node started')
  return node.dialProtocol(multiaddr(target), protocol, { runOnLimitedConnection: true, signal: AbortSignal.timeout(10_000) })
}

async function writeAll (stream: Stream, payload: Uint8Array): Promise<void> {
  for (let offset = 0; offset < payload.byteLength; offset += 16_384) {
    if (!stream.send(payload.subarray(offset, offset + 16_384))) await stream.onDrain({ signal: AbortSignal.timeout(10_000) })
  }
}

async function run (command: Command): Promise<Record<string, unknown>> {
  switch (command.cmd) {
    case 'reserve': {
      const startedAt = Date.now()
      // a bounded number at a time: a stock node must dial and reserve within 5 s (fixed in the relay transport),
      // which a few hundred nodes starting at once in one process on a busy machine do not all manage
      const started: Libp2p[] = []
      const errors: string[] = []
      let next = 0
      let failedAttempts = 0
      await Promise.all(Array.from({ length: Math.min(command.concurrency ?? 32, command.count) }, async () => {
        while (next < command.count) {
          next++
          // like a real client, one that fails tries again (after a pause), up to `attempts` times in all
          for (let attempt = 1; ; attempt++) {
            try {
              started.push(await startNode(command.relay, command.host))
              break
            } catch (err) {
              if (attempt >= (command.attempts ?? 1)) {
                errors.push(String(err))
                break
              }
              failedAttempts++
              await new Promise(resolve => setTimeout(resolve, 200 * attempt))
            }
          }
        }
      }))
      nodes.push(...started)
      return { peers: started.map(node => ({ peerId: node.peerId.toString(), circuit: circuitAddress(node) })), failed: errors.length, failedAttempts, errors: errors.slice(0, 3), ms: Date.now() - startedAt }
    }
    case 'echo': {
      const stream = await openStream(ECHO_PROTOCOL, command.target)
      const payload = randomBytes(command.bytes)
      const received: Uint8Array[] = []
      const reading = (async () => { for await (const chunk of stream) received.push(chunk.subarray()) })()
      await writeAll(stream, payload)
      await stream.close()
      await reading
      const echoed = Buffer.concat(received)
      return { equal: Buffer.from(payload).equals(echoed), bytes: echoed.byteLength }
    }
    case 'send': {
      // what a plain sender sees: it writes everything, closes, and learns of a reset from the stream's close event
      const stream = await openStream(SINK_PROTOCOL, command.target)
      const closed = new Promise<string | undefined>((resolve) => {
        stream.addEventListener('close', (evt) => { resolve(evt.error != null ? `${evt.error.name}: ${evt.error.message}` : undefined) }, { once: true })
      })
      let closeError: string | undefined
      try {
        await writeAll(stream, randomBytes(command.bytes))
        await stream.close({ signal: AbortSignal.timeout(10_000) })
      } catch (err) {
        closeError = err instanceof Error ? `${err.name}: ${err.message}` : String(err)
      }
      const ended = await Promise.race([closed, new Promise<string>(resolve => setTimeout(resolve, 15_000, 'no close event within 15 s'))])
      return { closeError, resetError: ended }
    }
    case 'stop': {
      const leaving = nodes.splice(0, command.count)
      await Promise.all(leaving.map(async node => { await node.stop() }))
      return { stopped: leaving.length }
    }
    case 'held':
      return { held: nodes.filter(node => circuitAddress(node) != null).length }
  }
}

createInterface({ input: process.stdin }).on('line', (line) => {
  const command = JSON.parse(line) as Command
  run(command).then(
    (result) => { process.stdout.write(JSON.stringify({ id: command.id, ok: true, ...result }) + '\n') },
    (err: Error) => { process.stdout.write(JSON.stringify({ id: command.id, ok: false, error: `${err.name}: ${err.message}` }) + '\n') }
  )
}).on('close', () => {
  void Promise.all(nodes.map(async node => { await node.stop() })).finally(() => process.exit(0))
})
