/**
 * A run of lab trials: one namespace lab and one gateway process, and per trial a fresh pair of peer daemons
 * (trial-launcher.ts starts them, trial-run.ts runs one trial, trial-summary.ts sums the run up).
 */
import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseFlavour, type NatFlavour } from './nat.js'
import { createTopology, type Topology, type TopologyOptions } from './topology.js'
import { parseWanLink } from './wan-link.js'
import { probeWaitMs, punchSettingsFromArgs, type PunchSettings } from './trial-decide.js'
import { gateFor, gated, STOP_GRACE_MS, ungated, type PeerLauncher, type PeerPair } from './trial-launcher.js'
import { LabProcess, type JsonEvent } from './trial-process.js'
import type { TrialResult } from './trial-result.js'
import { errorMessage, raceAbort, runTrial } from './trial-run.js'
import { summarize, type TrialSummary } from './trial-summary.js'

export interface RunTrialsOptions {
  /** the dialling peer's NAT flavour */
  a: NatFlavour
  /** the dialled peer's NAT flavour (it starts the hole punch) */
  b: NatFlavour
  trials: number
  /** appended to both peers' `natmesh peer` arguments (after the lab's defaults, so they win) */
  peerArgs?: string[]
  /** the rest of the lab: B sharing A's NAT (sameNatAs { B: 'A' }), carrier NATs, WAN emulators on A's and B's links */
  topology?: Pick<TopologyOptions, 'sameNatAs' | 'carrierNat' | 'wan'>
  /** appended to the gateway's arguments */
  gatewayArgs?: string[]
  /** a trial that has not ended after this long is stopped and reported as an error; default from the settings */
  trialTimeoutMs?: number
  /** called after every trial, before the next one starts */
  onTrial?: (result: TrialResult) => void | Promise<void>
  /** namespace prefix; default `nm-<random>-`, so parallel runs never collide */
  prefix?: string
  /** leave the namespaces and the work directory (identities, logs) behind for inspection; processes still stop */
  keep?: boolean
  /** stops the run: the current trial ends as an error, everything is torn down, runTrials resolves */
  signal?: AbortSignal
  /** the natmesh CLI entry point; default `<repo>/dist/cli/index.js` */
  cli?: string
  /** the Node binary for the daemons; default process.execPath */
  node?: string
  /** progress lines (gateway up, trial started...); default: silent */
  log?: (line: string) => void
}

export interface TrialRun {
  prefix: string
  trials: TrialResult[]
  summary: TrialSummary
  /** only with `keep`: the namespaces and work directory that were left behind */
  kept?: { namespaces: string[], dir: string }
}

/** `<repo>/dist/cli/index.js`, from both src/lab (vitest) and dist/lab (built) */
export const DEFAULT_CLI = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url))

const GATEWAY_PORT = 4001
/** inside the gateway's own namespace: its loopback is the lab's, not the host's */
const GATEWAY_API = '127.0.0.1:8080'
/** short, so a udp-blocked peer falls back to TCP fast (the peer's default is 5000) */
const LAB_GATEWAY_DIAL_TIMEOUT_MS = 1500
const GATEWAY_START_TIMEOUT_MS = 30_000
const MAX_TRIALS = 10_000

export function randomPrefix (): string {
  return `nm-${randomBytes(4).toString('hex').slice(0, 6)}-`
}

export function assertRoot (): void {
  if (process.getuid?.() !== 0) {
    throw new Error('the NAT lab needs root: it creates network namespaces, veth pairs and nftables rules ' +
      '(run it with sudo, or as root in a CI container)')
  }
}

/**
 * Runs `trials` trials of peer A (flavour `a`) dialling peer B (flavour `b`) through a gateway, in one namespace
 * lab with one gateway process; every trial gets fresh peer processes with new identities and flushed NAT tables.
 * Everything (processes, namespaces, temporary files) is torn down when it returns or throws, unless `keep`.
 */
export async function runTrials (opts: RunTrialsOptions): Promise<TrialRun> {
  const a = parseFlavour(opts.a)
  const b = parseFlavour(opts.b)
  if (!Number.isInteger(opts.trials) || opts.trials < 1 || opts.trials > MAX_TRIALS) {
    throw new Error(`trials must be an integer 1..${MAX_TRIALS}, got ${opts.trials}`)
  }
  assertRoot()
  const cli = opts.cli ?? DEFAULT_CLI
  if (!existsSync(cli)) throw new Error(`natmesh CLI not found at ${cli}: build it first (tsc -p tsconfig.json)`)
  const gate = gateFor(cli)
  const prefix = opts.prefix ?? randomPrefix()
  const log = opts.log ?? (() => {})
  const peerArgs = ['--gateway-dial-timeout-ms', String(LAB_GATEWAY_DIAL_TIMEOUT_MS), ...(opts.peerArgs ?? [])]
  const settings = punchSettingsFromArgs(peerArgs)
  // every exchange of the trial is some round trips over the emulated links
  const worstRttMs = Object.values(opts.topology?.wan ?? {}).reduce((sum, w) => { const l = parseWanLink(w); return sum + 2 * (l.delayMs + l.jitterMs) }, 0)
  const trialTimeoutMs = opts.trialTimeoutMs ?? defaultTrialTimeoutMs(settings) + 50 * worstRttMs

  const dir = await mkdtemp(join(tmpdir(), 'natmesh-lab-'))
  const env = daemonEnv()
  let topo: Topology | undefined
  let gateway: LabProcess | undefined
  let next: PeerPair | undefined
  const results: TrialResult[] = []
  try {
    topo = await createTopology({ ...opts.topology, prefix, gateways: 1, peers: { A: a, B: b } })
    const lab = topo
    const spawn = (name: string, ns: string, args: string[], gateEnv?: NodeJS.ProcessEnv): LabProcess =>
      new LabProcess(name, lab.spawnIn(ns, opts.node ?? process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'], env: gateEnv ?? env }))

    const launcher = (n: number, slot: 'A' | 'B'): PeerLauncher => {
      const args = ['peer', '--host', '0.0.0.0', '--identity-file', join(dir, `trial${n}-${slot}.key`), '--json', ...peerArgs]
      if (gate === undefined) return ungated((extra) => spawn(slot, lab.peer(slot), [cli, ...args, ...extra]))
      return gated(spawn(slot, lab.peer(slot), ['--import', gate.module, cli, ...args], { ...env, NM_LAB_PRELOAD: gate.preload.join(',') }))
    }
    const prepare = (n: number): PeerPair => ({ B: launcher(n, 'B'), A: launcher(n, 'A') })
    // the first trial's daemons load their modules while the gateway starts
    next = prepare(1)

    const gwIp = topo.gatewayIp(0)
    gateway = spawn('gateway', topo.gateway(0), [
      cli, 'gateway', '--host', '0.0.0.0', '--udp-port', String(GATEWAY_PORT), '--tcp-port', String(GATEWAY_PORT),
      '--announce', gwIp, '--api', GATEWAY_API, '--identity-file', join(dir, 'gateway.key'), '--json',
      ...(opts.gatewayArgs ?? [])
    ])
    gateway.child.stdin?.end()
    let started: JsonEvent
    try {
      started = await raceAbort(gateway.waitFor((e) => e.event === 'gateway-started', GATEWAY_START_TIMEOUT_MS, 'gateway-started event'), opts.signal)
    } catch (err) {
      throw new Error(`${errorMessage(err)}\n--- gateway stderr (tail) ---\n${gateway.stderr.tail()}`)
    }
    const gatewayId = String(started.peerId)
    log(`lab ${prefix}: gateway ${gatewayId} on ${gwIp}, A (${a}) behind ${topo.natWanIp('A')}, B (${b}) behind ${topo.natWanIp('B')}`)
    const gatewayFlags = [
      '--gateway', `/ip4/${gwIp}/udp/${GATEWAY_PORT}/udx/p2p/${gatewayId}`,
      '--gateway', `/ip4/${gwIp}/tcp/${GATEWAY_PORT}/p2p/${gatewayId}`
    ]

    for (let n = 1; n <= opts.trials; n++) {
      if (opts.signal?.aborted === true) break
      const pair = next ?? prepare(n)
      next = undefined
      const result = await runTrial({
        n, a, b, topo, trialTimeoutMs, settings, gateway, gatewayFlags, signal: opts.signal, pair,
        // the next trial's daemons load their modules while this trial's daemons shut down
        prepareNext: () => { if (n < opts.trials && opts.signal?.aborted !== true) next ??= prepare(n + 1) }
      })
      results.push(result)
      await opts.onTrial?.(result)
    }
  } finally {
    await Promise.all([next?.A.cancel(), next?.B.cancel(), gateway?.stop(STOP_GRACE_MS)].map(async (p) => { await p?.catch(() => {}) }))
    if (opts.keep !== true) {
      await topo?.down()
      await rm(dir, { recursive: true, force: true })
    }
  }
  const run: TrialRun = { prefix, trials: results, summary: summarize(a, b, results) }
  if (opts.keep === true) run.kept = { namespaces: topo?.namespaces() ?? [], dir }
  return run
}

/** Long enough for both peers' gateway fallback, the exchange, and every punch attempt. */
export function defaultTrialTimeoutMs (s: PunchSettings): number {
  return 2 * s.gatewayDialTimeoutMs + probeWaitMs(s) + 10_000
}

/**
 * The daemons' environment: ours without NATMESH_* (a user's config must not change the lab), with Node's compile
 * cache on (in Node's own default directory unless NODE_COMPILE_CACHE names one): every trial starts two fresh
 * daemons, and a warm cache roughly halves the CPU each spends loading its modules.
 */
function daemonEnv (): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {}
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('NATMESH_')) env[key] = value
  }
  env.NODE_COMPILE_CACHE ??= join(tmpdir(), 'node-compile-cache')
  return env
}
