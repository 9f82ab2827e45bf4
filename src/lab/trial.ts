import { randomBytes } from 'node:crypto'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { isNated, parseFlavour, type NatFlavour } from './nat.js'
import { createTopology, type Topology, type TopologyOptions } from './topology.js'
import { parseWanLink } from './wan-link.js'
import { decide, probeWaitMs, punchSettingsFromArgs, type PunchSettings, type TrialEnd } from './trial-decide.js'
import { LabProcess, type JsonEvent } from './trial-process.js'
import { trialResult, type TrialResult } from './trial-result.js'
import { median, percentile } from './trial-stats.js'

export interface TrialSummary {
  a: NatFlavour
  b: NatFlavour
  trials: number
  /** counts */
  relayOk: number
  directOk: number
  /** over the trials that went direct; null when none did */
  medianMsRelayToDirect: number | null
  p95MsRelayToDirect: number | null
}

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
const STOP_GRACE_MS = 2000
const MAX_TRIALS = 10_000

/**
 * Whether a hole punch can give A and B a direct path: neither side may block UDP, and two symmetric NATs never
 * meet (each picks a new random port per destination, so the peers skip the punch). One symmetric NAT is crossed:
 * by a plain dial when the other side is public, by a birthday punch when it is behind a cone NAT.
 */
export function punchExpected (a: NatFlavour, b: NatFlavour): boolean {
  if (a === 'udp-blocked' || b === 'udp-blocked') return false
  return !(a === 'symmetric' && b === 'symmetric')
}

/** one short attempt: a pair that cannot punch ends its trial in well under a second after the relay ping */
export const FAST_FAIL_PEER_ARGS: readonly string[] = ['--hole-punch-timeout-ms', '500', '--hole-punch-retries', '1']

/** Peer arguments that keep a trial short: the defaults where a punch should work, one short attempt where it cannot. */
export function recommendedPeerArgs (a: NatFlavour, b: NatFlavour): string[] {
  return punchExpected(a, b) ? [] : [...FAST_FAIL_PEER_ARGS]
}

export function summarize (a: NatFlavour, b: NatFlavour, results: readonly TrialResult[]): TrialSummary {
  const ms = results.filter((r) => r.directOk && r.msRelayToDirect !== undefined).map((r) => r.msRelayToDirect as number)
  return {
    a,
    b,
    trials: results.length,
    relayOk: results.filter((r) => r.relayOk).length,
    directOk: results.filter((r) => r.directOk).length,
    medianMsRelayToDirect: median(ms) ?? null,
    p95MsRelayToDirect: percentile(ms, 95) ?? null
  }
}

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

/** dist/lab/trial-gate.js next to the CLI, and the modules it preloads; undefined when the CLI is not ours */
function gateFor (cli: string): { module: string, preload: string[] } | undefined {
  const cliDir = dirname(cli)
  const module = join(cliDir, '..', 'lab', 'trial-gate.js')
  const preload = [join(cliDir, 'peer-command.js')]
  if (!existsSync(module) || !preload.every((p) => existsSync(p))) return undefined
  return { module, preload }
}

/** A peer daemon of a coming trial: started (loading its modules) or not, and held until released. */
interface PeerLauncher {
  /** lets the daemon run, with `extra` CLI arguments appended */
  release: (extra: string[]) => LabProcess
  /** the process, once released */
  process: () => LabProcess | undefined
  cancel: () => Promise<void>
  /**
   * ends a decided trial's daemon at once: its graceful shutdown (about a second, while libp2p closes every
   * connection politely) measures nothing, and the next trial's fresh daemons are already loaded
   */
  discard: () => Promise<void>
}

interface PeerPair { A: PeerLauncher, B: PeerLauncher }

function gated (proc: LabProcess): PeerLauncher {
  let released = false
  return {
    release: (extra) => {
      released = true
      proc.child.stdin?.end(JSON.stringify(extra) + '\n')
      return proc
    },
    // a daemon that was never let go has nothing to report
    process: () => released ? proc : undefined,
    cancel: async () => { await proc.stop(STOP_GRACE_MS) },
    discard: async () => { await proc.stop(0) }
  }
}

function ungated (start: (extra: string[]) => LabProcess): PeerLauncher {
  let proc: LabProcess | undefined
  return {
    release: (extra) => {
      proc = start(extra)
      proc.child.stdin?.end()
      return proc
    },
    process: () => proc,
    cancel: async () => { await proc?.stop(STOP_GRACE_MS) },
    discard: async () => { await proc?.stop(0) }
  }
}

interface TrialContext {
  n: number
  a: NatFlavour
  b: NatFlavour
  topo: Topology
  trialTimeoutMs: number
  settings: PunchSettings
  gateway: LabProcess
  /** `--gateway <udx addr> --gateway <tcp addr>`, given to the daemons when they are released */
  gatewayFlags: string[]
  signal: AbortSignal | undefined
  pair: PeerPair
  prepareNext: () => void
}

async function runTrial (ctx: TrialContext): Promise<TrialResult> {
  const started = Date.now()
  const deadline = started + ctx.trialTimeoutMs
  let failure: string | undefined
  const phases: { bReady?: number, aVerdict?: number, stop: number } = { stop: 0 }
  try {
    if (!ctx.gateway.running) throw new Error(`the gateway ${ctx.gateway.describeExit()}`)
    for (const slot of ['A', 'B']) {
      if (isNated(ctx.topo.flavourOf(slot))) await ctx.topo.flushConntrack(slot)
    }
    const b = ctx.pair.B.release(ctx.gatewayFlags)
    const bStarted = await raceAbort(b.waitFor((e) => e.event === 'started', deadline - Date.now(), 'started event'), ctx.signal)
    await raceAbort(b.waitFor((e) => e.event === 'reservation', deadline - Date.now(), 'relay reservation'), ctx.signal)
    phases.bReady = Date.now() - started
    const a = ctx.pair.A.release([...ctx.gatewayFlags, '--dial', String(bStarted.peerId)])
    const verdict = await waitForVerdict(a, b, ctx.settings, deadline, ctx.signal, ctx.trialTimeoutMs)
    phases.aVerdict = Date.now() - started - phases.bReady
    if (!verdict.done) failure = verdict.why
    else if (verdict.code === 'A_ERROR') failure = verdict.why
  } catch (err) {
    failure = errorMessage(err)
  } finally {
    const stopping = Date.now()
    ctx.prepareNext()
    await Promise.all([ctx.pair.A.discard(), ctx.pair.B.discard()])
    phases.stop = Date.now() - stopping
  }
  const peerA = ctx.pair.A.process()
  const peerB = ctx.pair.B.process()
  const tails = [['A', peerA, 20], ['B', peerB, 20], ['gateway', ctx.gateway, 10]] as const
  return trialResult({
    trial: ctx.n,
    a: ctx.a,
    b: ctx.b,
    aEvents: peerA?.events.map((t) => t.event) ?? [],
    bEvents: peerB?.events.map((t) => t.event) ?? [],
    ...(failure !== undefined ? { failure } : {}),
    durationMs: Date.now() - started,
    phasesMs: phases,
    context: tails.filter(([, p]) => p !== undefined).map(([name, p, lines]) =>
      ({ title: `${name} stderr (tail; ${p?.describeExit() ?? ''})`, text: p?.stderr.tail(lines) ?? '' }))
  })
}

/** Resolves once decide() calls the trial, at the deadline ({ done: false }), or on abort / either peer's exit. */
async function waitForVerdict (a: LabProcess, b: LabProcess, s: PunchSettings, deadline: number, signal: AbortSignal | undefined, timeoutMs: number): Promise<TrialEnd> {
  return await new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined
    let finished = false
    const finish = (end: TrialEnd): void => {
      if (finished) return
      finished = true
      clearTimeout(timer)
      offA()
      offB()
      signal?.removeEventListener('abort', onAbort)
      resolve(end)
    }
    const check = (): void => {
      if (finished) return
      const aPeerId = a.find((e) => e.event === 'started')?.peerId
      const now = Date.now()
      const verdict = decide({ a: a.events, b: b.events, aPeerId: typeof aPeerId === 'string' ? aPeerId : undefined }, s, now)
      if (verdict.done) { finish(verdict); return }
      if (!a.running) { finish({ done: false, why: `A ${a.describeExit()} before the trial was decided` }); return }
      if (!b.running) { finish({ done: false, why: `B ${b.describeExit()} before the trial was decided` }); return }
      if (now >= deadline) { finish({ done: false, why: `trial timed out: no verdict within ${timeoutMs} ms` }); return }
      clearTimeout(timer)
      timer = setTimeout(check, Math.max(0, Math.min(deadline, verdict.recheckAt ?? deadline) - now))
    }
    const onAbort = (): void => { finish({ done: false, why: 'aborted' }) }
    const offA = a.onChange(check)
    const offB = b.onChange(check)
    signal?.addEventListener('abort', onAbort, { once: true })
    if (signal?.aborted === true) onAbort()
    else check()
  })
}

function errorMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

async function raceAbort<T> (p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal === undefined) return await p
  if (signal.aborted) throw new Error('aborted')
  let onAbort: (() => void) | undefined
  try {
    return await Promise.race([p, new Promise<never>((_resolve, reject) => {
      onAbort = () => { reject(new Error('aborted')) }
      signal.addEventListener('abort', onAbort, { once: true })
    })])
  } finally {
    if (onAbort !== undefined) signal.removeEventListener('abort', onAbort)
  }
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
