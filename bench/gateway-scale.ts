/**
 * How many reservations one gateway holds, and at what cost: a real `natmesh gateway` process on loopback, and
 * stock js-libp2p clients over TCP (test/helpers/stock-libp2p.ts, many per process) that reserve on it.
 * Profiles (`--profiles`): `stock` clients keep libp2p's defaults (TCP, a connection-monitor ping every 10 s);
 * `natmesh` clients link as idle natmesh peers do (the UDP overlay, a keepalive every 10 s, no connection monitor,
 * no pings), so the idle figure is natmesh's own deployment's too.
 *
 * Cases, each on a fresh gateway, for each profile (natmesh ones are named natmesh-spread-N, natmesh-one-ip-N):
 *   spread-N     N clients over several processes, each process on its own loopback IP (127.0.1.x)
 *   one-ip-N     N clients behind one IP (127.0.0.2), as behind a carrier NAT, over the same processes
 * Per case: reservations held and refused, time until every client holds one (or failed), gateway RSS per
 * reservation (RSS with the clients minus RSS before, over reservations held), gateway CPU while idle over a
 * steady window (% of one core), and churn: rounds in which a tenth of the clients leave and as many new ones
 * reserve; then reservations held must equal peers connected once the departed peers' grace is over.
 *
 *   node bench/gateway-scale.ts [--quick] [--sizes 100,1000] [--one-ip 1000] [--processes 4] [--settle-s 60] [--idle-s 60]
 *                               [--churn-rounds 5] [--profiles stock,natmesh]
 *                               [--cli <other build's dist/cli/index.js>] [--old-gateway]
 *
 * The idle window starts after --settle-s of steady state (what the accept left to collect and finish is not
 * idling). --quick: 5 s settle, 10 s idle window, 2 churn rounds. --old-gateway: the gateway is a build from before natmesh stopped
 * listing /udx to stock clients (the clients are then taught the /udx code) and before reservations had a grace;
 * used with --cli to measure main's code. Last line of stdout: {"bench":"gateway-scale","cases":[…],…}
 */
import { readFile } from 'node:fs/promises'
import { setPriority } from 'node:os'
import { parseArgs } from 'node:util'
import { positiveInteger } from './lib/args.ts'
import { CliGateway } from '../test/helpers/cli-gateway.ts'
import { StockClients } from '../test/helpers/stock-clients.ts'

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    sizes: { type: 'string', default: '100,1000' },
    'one-ip': { type: 'string', default: '1000' },
    processes: { type: 'string', default: '4' },
    'settle-s': { type: 'string' },
    'idle-s': { type: 'string' },
    'churn-rounds': { type: 'string' },
    profiles: { type: 'string', default: 'stock,natmesh' },
    cli: { type: 'string' },
    'old-gateway': { type: 'boolean', default: false }
  }
})
const quick = args.quick === true
const sizes = (args.sizes ?? '').split(',').filter(s => s !== '').map(s => positiveInteger({ size: s }, 'size'))
const oneIp = (args['one-ip'] ?? '').split(',').filter(s => s !== '').map(s => positiveInteger({ size: s }, 'size'))
const processes = positiveInteger(args, 'processes')
const settleS = positiveInteger({ 'settle-s': args['settle-s'] ?? (quick ? '5' : '60') }, 'settle-s')
const idleS = positiveInteger({ 'idle-s': args['idle-s'] ?? (quick ? '10' : '60') }, 'idle-s')
const churnRounds = positiveInteger({ 'churn-rounds': args['churn-rounds'] ?? (quick ? '2' : '5') }, 'churn-rounds')
const oldGateway = args['old-gateway'] === true
const PROFILES = ['stock', 'natmesh'] as const
type Profile = typeof PROFILES[number]
const profiles = (args.profiles ?? '').split(',').filter(s => s !== '').map((name): Profile => {
  const profile = PROFILES.find(p => p === name)
  if (profile == null) throw new Error(`--profiles: "${name}" is none of ${PROFILES.join(', ')}`)
  return profile
})
/** how long a departed peer keeps its reservation on the gateway (its default), plus slack for the check */
const GRACE_MS = 10_000
const TICKS_PER_SECOND = 100
/**
 * Client starts in flight at once, over all processes. Each start costs its (niced) process tens of ms of CPU;
 * more at once lagged their event loops, so the keepalives of nodes already reserved went out too late and the
 * gateway took them for gone (1,675 of 10,000 lost within the first minute with 16 per process over 20).
 */
const STARTS_IN_FLIGHT = 64
/** and the tries each makes (a stock client must reserve within a fixed 5 s) */
const RESERVE_OPTIONS = { concurrency: Math.max(1, Math.ceil(STARTS_IN_FLIGHT / processes)), attempts: 5 }
const CLIENT_NICENESS = 10

interface CaseResult {
  name: string
  profile: Profile
  clients: number
  ips: number
  processes: number
  held: number
  refused: number
  failedAttempts: number
  acceptMs: number
  /** gateway CPU time while the clients reserved */
  acceptCpuMs: number
  rssBeforeMiB: number
  rssMiB: number
  rssPerReservationKiB: number
  idleCpuPercent: number
  /** the gateway's counts after the idle window (clients can lose their connection on a loaded machine) */
  afterIdle: { reservations: number, connected: number }
  churn: { rounds: number, left: number, joined: number, joinFailed: number, reservations: number, connected: number, stale: number }
}

async function rssBytes (pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8')
  const kib = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return kib * 1024
}

async function cpuTicks (pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
  // fields after the command name (which may hold spaces): utime is the 14th field, stime the 15th
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return Number(fields[11]) + Number(fields[12])
}

/** the gateway's own count of reservations, and of inbound connections (one per stock client) */
async function gatewayCounts (gateway: CliGateway): Promise<{ reservations: number, connected: number }> {
  const text = await gateway.metrics()
  const value = (pattern: RegExp): number => Number(pattern.exec(text)?.[1] ?? 0)
  return {
    reservations: value(/^libp2p_circuit_relay_server_reservations_total (\d+)/m),
    connected: value(/^libp2p_connection_manager_connections\{libp2p_connection_manager_connections="inbound"\} (\d+)/m)
  }
}

const mib = (bytes: number): number => Math.round(bytes / 1024 / 1024 * 10) / 10
const sleep = async (ms: number): Promise<void> => new Promise(resolve => setTimeout(resolve, ms))

async function runCase (profile: Profile, shape: string, clients: number, ipOf: (process: number) => string): Promise<CaseResult> {
  const name = profile === 'stock' ? shape : `${profile}-${shape}`
  const gateway = await CliGateway.start(['--max-reservations', String(clients * 2)], { cli: args.cli })
  const groups = Array.from({ length: processes }, () => new StockClients({ knowsUdx: oldGateway, profile }))
  // the clients are the load, the gateway is what is measured: with 20 client processes starting nodes at once on
  // a 2-core machine, an equal share left the gateway too little CPU to accept their connections
  for (const group of groups) if (group.pid != null) setPriority(group.pid, CLIENT_NICENESS)
  try {
    const relay = gateway.address(profile === 'natmesh' ? 'udx' : 'tcp')
    await sleep(1000)
    const rssBefore = await rssBytes(gateway.pid)
    const share = (i: number): number => Math.floor(clients / processes) + (i < clients % processes ? 1 : 0)
    const startedAt = Date.now()
    const acceptTicksBefore = await cpuTicks(gateway.pid)
    const results = await Promise.all(groups.map(async (group, i) => group.reserve(relay, share(i), ipOf(i), RESERVE_OPTIONS)))
    const acceptMs = Date.now() - startedAt
    const acceptCpuMs = (await cpuTicks(gateway.pid) - acceptTicksBefore) * 1000 / TICKS_PER_SECOND
    const held = results.reduce((sum, r) => sum + r.peers.length, 0)
    const refused = results.reduce((sum, r) => sum + r.failed, 0)
    const failedAttempts = results.reduce((sum, r) => sum + r.failedAttempts, 0)
    const firstError = results.flatMap(r => r.errors)[0]
    console.log(`${name}: ${held}/${clients} reservations in ${acceptMs} ms, ${refused} gave up, ${failedAttempts} attempts failed, gateway CPU ${acceptCpuMs} ms${firstError != null ? ` (${firstError.replace(/\s+/g, ' ').slice(150, 400)})` : ''}`)

    await sleep(2000)
    const rss = await rssBytes(gateway.pid)
    await sleep(settleS * 1000)
    const ticksBefore = await cpuTicks(gateway.pid)
    await sleep(idleS * 1000)
    const idleCpuPercent = Math.round((await cpuTicks(gateway.pid) - ticksBefore) / TICKS_PER_SECOND / idleS * 1000) / 10
    const afterIdle = await gatewayCounts(gateway)
    console.log(`${name}: RSS ${mib(rssBefore)} → ${mib(rss)} MiB (${Math.round((rss - rssBefore) / Math.max(held, 1) / 1024)} KiB per reservation), idle CPU ${idleCpuPercent} % of a core over ${idleS} s after ${settleS} s; then ${afterIdle.reservations} reservations, ${afterIdle.connected} connected`)

    const churn = { rounds: churnRounds, left: 0, joined: 0, joinFailed: 0, reservations: 0, connected: 0, stale: 0 }
    for (let round = 0; round < churnRounds; round++) {
      await Promise.all(groups.map(async (group, i) => {
        const count = Math.max(1, Math.floor(share(i) / 10))
        const { stopped } = await group.command<{ stopped: number }>({ cmd: 'stop', count })
        const joined = await group.reserve(relay, count, ipOf(i), RESERVE_OPTIONS)
        churn.left += stopped
        churn.joined += joined.peers.length
        churn.joinFailed += joined.failed
      }))
    }
    // departed peers' reservations end after the grace: wait for that, or report what stayed
    const deadline = Date.now() + GRACE_MS + 15_000
    let counts = await gatewayCounts(gateway)
    while (counts.reservations !== counts.connected && Date.now() < deadline) {
      await sleep(500)
      counts = await gatewayCounts(gateway)
    }
    Object.assign(churn, { ...counts, stale: Math.max(0, counts.reservations - counts.connected) })
    console.log(`${name}: churn ${churnRounds} rounds, ${churn.left} left, ${churn.joined} joined (${churn.joinFailed} refused): ${counts.reservations} reservations for ${counts.connected} connected peers`)
    return {
      name,
      profile,
      clients,
      ips: new Set(groups.map((_g, i) => ipOf(i))).size,
      processes,
      held,
      refused,
      failedAttempts,
      acceptMs,
      acceptCpuMs,
      rssBeforeMiB: mib(rssBefore),
      rssMiB: mib(rss),
      rssPerReservationKiB: Math.round((rss - rssBefore) / Math.max(held, 1) / 1024),
      idleCpuPercent,
      afterIdle,
      churn
    }
  } finally {
    await Promise.all(groups.map(async group => { await group.stop() }))
    await gateway.stop()
  }
}

const cases: CaseResult[] = []
for (const profile of profiles) {
  for (const n of sizes) cases.push(await runCase(profile, `spread-${n}`, n, i => `127.0.1.${i + 1}`))
  for (const n of oneIp) cases.push(await runCase(profile, `one-ip-${n}`, n, () => '127.0.0.2'))
}
console.log(JSON.stringify({ bench: 'gateway-scale', gateway: args.cli ?? 'this build', quick, settleS, idleS, cases }))
