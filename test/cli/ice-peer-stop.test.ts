import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, expect, it } from 'vitest'
import { createTopology } from '../../src/lab/index.js'
import type { Topology } from '../../src/lab/index.js'
import { LabProcess } from '../../src/lab/trial-process.js'

/**
 * ICE-mode peers, as a user starts them, that carried a WebRTC connection must end once stopped. In a lab of our
 * own: a gateway and two public peers, each in its namespace. Needs root and a built dist/.
 */
const BIN = new URL('../../bin/natmesh.js', import.meta.url).pathname
const PREFIX = `nm-icestop${process.pid % 100000}-`
const processes: LabProcess[] = []
let topo: Topology | undefined
let dir: string | undefined

afterAll(async () => {
  for (const p of processes) await p.stop(500)
  await topo?.down()
  if (dir != null) await rm(dir, { recursive: true, force: true })
})

const start = (ns: string, name: string, args: string[]): LabProcess => {
  const p = new LabProcess(name, topo!.spawnIn(ns, process.execPath, [BIN, ...args, '--json'], { stdio: ['ignore', 'pipe', 'pipe'] }))
  processes.push(p)
  return p
}

it('an ice-mode peer that carried a WebRTC connection exits by itself after SIGTERM', async () => {
  topo = await createTopology({ prefix: PREFIX, gateways: 1, peers: { A: 'public', B: 'public' } })
  const ip = topo.gatewayIp(0)
  dir = await mkdtemp(join(tmpdir(), 'natmesh-icestop-'))

  // the namespaces are ours alone: fixed ports cannot collide with anything
  const gateway = start(topo.gateway(0), 'gateway', ['gateway', '--announce', ip, '--udp-port', '4001', '--tcp-port', '4001', '--api', '127.0.0.1:8080', '--identity-file', join(dir, 'gw.key')])
  const started = await gateway.waitFor(e => e.event === 'gateway-started', 20_000, 'gateway-started')
  const udx = `/ip4/${ip}/udp/4001/udx/p2p/${started.peerId as string}`
  // the longest ICE attempt the strategy history allows (30 s, not the first attempt's 15 s): on a loaded machine
  // this test is about the stop, not about how fast ICE connects
  const history = JSON.stringify({ version: 1, strategies: { direct: { timeoutMs: 30_000, successes: 0, failures: 0 } } })
  for (const name of ['a', 'b']) await writeFile(join(dir, `${name}-ice.json`), history)
  const peerArgs = (name: string): string[] => ['peer', '--mode', 'ice', '--ice-nat-type', 'no-nat', '--gateway', udx,
    '--allow-private-addresses', '--identity-file', join(dir!, `${name}.key`), '--ice-history-file', join(dir!, `${name}-ice.json`)]
  const b = start(topo.peer('B'), 'b', peerArgs('b'))
  await b.waitFor(e => e.event === 'reservation', 20_000, 'b\'s reservation')
  const bId = b.find(e => e.event === 'started')!.peerId as string
  const a = start(topo.peer('A'), 'a', [...peerArgs('a'), '--dial', bId])
  const path = await a.waitFor(e => e.event === 'ice-path', 45_000, 'a WebRTC connection to b')
  expect(path.peer).toBe(bId)

  for (const peer of [a, b]) {
    // 30 s: far above the daemon's own stop deadline, so a SIGKILL here means the peer ignored it
    await peer.stop(30_000)
    expect(peer.describeExit()).toBe('exited with code 0')
    expect(peer.stderr.text()).toContain('stopping')
    // without node-datachannel's cleanup the answering peer lingered here until the deadline ended it
    // ("stopped, but still running 10000 ms later, exiting; still open: PipeWrap ×2", with a 10 s deadline)
    expect(peer.stderr.text()).not.toMatch(/still (running|stopping)/)
  }
})
