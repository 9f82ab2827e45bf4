/**
 * Stations in the namespace NAT lab, real processes: three `natmesh gateway` processes (1 and 2 told only of 0) and
 * six peers (test/lab/station-agent.ts) behind different NAT flavours, each announcing a station and told of one
 * gateway. Every peer visits every other peer's station by name; then gateway 0 is killed (SIGKILL: no goodbye)
 * and every station must still be found and reachable within FAILOVER_BOUND_MS, and the sessions from before must
 * still carry messages.
 *
 * Needs root (namespaces, nftables, conntrack) and a built dist/ (`tsc -p tsconfig.json`; `npm test` does it).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { CLI, Proc } from '../helpers/session-lab.ts'
import { createTopology } from '../../dist/lab/topology.js'
import type { Topology } from '../../dist/lab/topology.js'
import type { NatFlavour } from '../../dist/lab/nat.js'
import { punchExpected } from '../../dist/lab/trial-summary.js'
import type { VisitResult } from './station-agent.ts'

const isRoot = process.getuid?.() === 0
const AGENT = fileURLToPath(new URL('./station-agent.ts', import.meta.url))
const PORT = 4001
const PEERS: Record<string, NatFlavour> = { A: 'public', B: 'cone', C: 'cone', D: 'symmetric', E: 'udp-blocked', F: 'cone' }
const stationOf = (slot: string): string => `station-${slot.toLowerCase()}`
/** a punch that can work gets this long to move a session to the direct path (3 attempts of 5 s at most) */
const WAIT_DIRECT_MS = 15_000
/**
 * Gateway death to every station found and reachable again by name (a round of fresh lookups and sessions from
 * every peer to every station, all succeeding). The records list both of a station's gateways and live on all three
 * gateways, so nothing has to be republished first: a lookup needs answers from two gateways, which the two live
 * ones give; the dial pings the gateways on the way (2 s at most) and goes through one that answered; a session
 * whose old connection went through the dead gateway and still looks open fails its set-up and is opened once more
 * on a fresh connection (≤ 15 s). One round of visits takes up to ~15 s on a loaded machine, so a round started
 * right after the kill may fail and the next succeed: 2 rounds plus slack. Measured: 15 s (load 15).
 */
const FAILOVER_BOUND_MS = 40_000

describe.skipIf(!isRoot)('stations in the NAT lab: 3 gateways, 6 peers behind public, cone, symmetric and udp-blocked NATs', () => {
  let topo: Topology
  let dir = ''
  const gateways: Proc[] = []
  const agents = new Map<string, Proc>()
  const procs: Proc[] = []
  const slots = Object.keys(PEERS)

  const spawn = (name: string, ns: string, args: string[]): Proc => {
    const env: NodeJS.ProcessEnv = {}
    for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('NATMESH_')) env[key] = value
    env.NODE_COMPILE_CACHE ??= join(tmpdir(), 'node-compile-cache')
    const proc = new Proc(name, topo.spawnIn(ns, process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env }))
    procs.push(proc)
    return proc
  }

  const startGateway = async (i: number, bootstrap: string[]): Promise<string> => {
    const ip = topo.gatewayIp(i)
    const gw = spawn(`gw${i}`, topo.gateway(i), [CLI, 'gateway', '--host', '0.0.0.0', '--udp-port', String(PORT), '--tcp-port', String(PORT),
      '--announce', ip, '--api', '127.0.0.1:8080', '--identity-file', join(dir, `gw${i}.key`), '--json', '--log-level', 'warn',
      ...(bootstrap.length > 0 ? ['--bootstrap', ...bootstrap] : [])])
    gateways[i] = gw
    const started = await gw.waitFor(e => e.event === 'gateway-started', 30_000, 'gateway-started')
    return String(started.peerId)
  }

  /** sends one visit to every agent at once; resolves with every agent's results */
  const visitAll = async (round: string, options: { fresh: boolean, waitDirectMs: number, parallel?: boolean }): Promise<Map<string, VisitResult[]>> => {
    const results = await Promise.all(slots.map(async slot => {
      const agent = agents.get(slot) as Proc
      const stations = slots.filter(s => s !== slot).map(target => ({
        name: stationOf(target),
        waitDirectMs: punchExpected(PEERS[slot] as NatFlavour, PEERS[target] as NatFlavour) ? options.waitDirectMs : 0
      }))
      agent.child.stdin?.write(JSON.stringify({ cmd: 'visit', round, stations, fresh: options.fresh, parallel: options.parallel }) + '\n')
      const ev = await agent.waitFor(e => e.event === 'visit-result' && e.round === round, 90_000, `visit-result ${round}`)
      return [slot, ev.results as VisitResult[]] as const
    }))
    return new Map(results)
  }

  const failures = (results: Map<string, VisitResult[]>): string[] =>
    [...results].flatMap(([slot, rs]) => rs.filter(r => !r.ok).map(r => `${slot} → ${r.station}: ${r.error ?? '?'}`))

  let setUpStarted = 0

  beforeAll(async () => {
    setUpStarted = Date.now()
    dir = await mkdtemp(join(tmpdir(), 'natmesh-stations-'))
    topo = await createTopology({ prefix: `nm-st${process.pid % 100000}-`, gateways: 3, peers: PEERS })
    const first = await startGateway(0, [])
    const bootstrap = [`/ip4/${topo.gatewayIp(0)}/tcp/${PORT}/p2p/${first}`]
    const ids = [first, ...await Promise.all([1, 2].map(async i => startGateway(i, bootstrap)))]
    for (const [n, slot] of slots.entries()) {
      // each peer is told of one gateway; it finds the other two in the DHT
      const g = n % 3
      const ip = topo.gatewayIp(g)
      const config = {
        gateways: [`/ip4/${ip}/udp/${PORT}/udx/p2p/${ids[g] ?? ''}`, `/ip4/${ip}/tcp/${PORT}/p2p/${ids[g] ?? ''}`],
        station: stationOf(slot),
        peer: { gatewayDiscoveryIntervalMs: 5000 }
      }
      agents.set(slot, spawn(slot, topo.peer(slot), [AGENT, JSON.stringify(config)]))
    }
    // published with relay addresses on two gateways (udx and tcp each)
    await Promise.all([...agents.values()].map(async agent => agent.waitFor(e => e.event === 'station-published' && Array.isArray(e.relayAddrs) && e.relayAddrs.length === 4 && Number(e.gateways) > 0, 60_000, 'station published on two gateways')))
  }, 120_000)

  afterAll(async () => {
    await Promise.all(procs.map(async p => { p.kill('SIGKILL'); await p.exited }))
    await topo?.down()
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  }, 60_000)

  it('every peer finds every station by name and gets a working session, direct where the NATs allow; a gateway dies and every station is found and reachable again within the bound, sessions survive', async () => {
    const startUp = [...agents].map(([slot, a]) => `${slot} ${(a.find(e => e.event === 'ready')?.at ?? 0) - a.startedAt}/${(a.find(e => e.event === 'station-published' && Array.isArray(e.relayAddrs) && e.relayAddrs.length === 4)?.at ?? 0) - a.startedAt}`)
    const phases: string[] = [`set-up ${Date.now() - setUpStarted} ms (peers ready/published on 2 gateways after ms: ${startUp.join(' ')})`]
    let phaseStarted = Date.now()
    const phase = (name: string): void => { phases.push(`${name} ${Date.now() - phaseStarted} ms`); phaseStarted = Date.now() }
    const round1 = await visitAll('r1', { fresh: false, waitDirectMs: WAIT_DIRECT_MS })
    phase('first visits')
    expect(failures(round1)).toEqual([])
    const notDirect = [...round1].flatMap(([slot, rs]) => rs.filter(r => {
      const target = slots.find(s => stationOf(s) === r.station) as string
      return punchExpected(PEERS[slot] as NatFlavour, PEERS[target] as NatFlavour) && r.path !== 'direct'
    }).map(r => `${slot} → ${r.station}: ${r.path ?? '?'}`))
    expect(notDirect).toEqual([])
    const lookups = [...round1.values()].flat().map(r => r.lookupMs ?? 0).sort((a, b) => a - b)
    const relayed = [...round1.values()].flat().filter(r => r.path === 'relay').length

    const killedAt = Date.now()
    gateways[0]?.kill('SIGKILL')
    // fresh lookups and sessions by name, again and again, until every one works
    let attempt = 0
    let reachableAfterMs: number | undefined
    let last: string[] = []
    while (Date.now() - killedAt < FAILOVER_BOUND_MS) {
      // no hole punches here (the peers' direct connections from before are reused), so all visits go at once
      const round = await visitAll(`fresh${++attempt}`, { fresh: true, waitDirectMs: 0, parallel: true })
      last = failures(round)
      if (last.length === 0) {
        reachableAfterMs = Date.now() - killedAt
        break
      }
    }
    phase('failover')
    expect(last).toEqual([])
    expect(reachableAfterMs).toBeLessThanOrEqual(FAILOVER_BOUND_MS)
    // the sessions opened before the gateway died, relayed ones included, still carry messages
    const survived = await visitAll('after', { fresh: false, waitDirectMs: 0 })
    expect(failures(survived)).toEqual([])
    expect([...survived.values()].flat().every(r => r.reused)).toBe(true)
    phase('survival check')
    const replaced = [...agents.values()].filter(a => a.find(e => e.event === 'gateway-replaced') != null).length
    console.info(`stations lab: ${lookups.length} lookups median ${lookups[Math.floor(lookups.length / 2)] ?? '?'} ms, max ${lookups.at(-1) ?? '?'} ms; ` +
      `${relayed} session(s) stayed relayed; gateway 0 killed: all stations reachable by name after ${reachableAfterMs ?? '?'} ms ` +
      `(${attempt} round(s)), ${replaced} peer(s) replaced it; ${phases.join(', ')}`)
  }, 240_000)
})
