/**
 * The namespace NAT lab as the session tests and the upgrade bench use it: one `natmesh gateway` process and
 * test/lab/session-agent.ts processes (peers that stream verified messages over sessions) in peer slots behind NATs.
 *
 * Imports the compiled lab from dist/ (run `tsc -p tsconfig.json` first); needs root. Shared by
 * test/lab/sessions.test.ts and bench/upgrade.ts.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import { createTopology } from '../../dist/lab/topology.js'
import { LabProcess } from '../../dist/lab/trial-process.js'
import type { Topology, TopologyOptions } from '../../dist/lab/topology.js'
import type { NatFlavour } from '../../dist/lab/nat.js'
import type { AgentConfig, PlainResult as AgentPlainResult, SessionResult as AgentSessionResult, StreamResult as AgentStreamResult } from '../lab/session-agent.ts'

export const AGENT = fileURLToPath(new URL('../lab/session-agent.ts', import.meta.url))
export const CLI = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url))
export const GATEWAY_PORT = 4001
/** circuits must outlive a whole relayed transfer (the gateway's default is 128 KiB per relayed connection) */
export const GATEWAY_LIMIT_ARGS = ['--circuit-data-bytes', String(2 ** 40), '--circuit-duration-ms', String(3_600_000)]

export type Ev = Record<string, unknown> & { event: string, t?: number, at: number }

/**
 * A session on the direct path: it moved there, or it opened there (with early dials the direct connection can
 * exist before the session opens, and the session then starts on it)
 */
export function onDirectPath (e: Ev): boolean {
  return (e.event === 'session-path' || e.event === 'session-open') && e.path === 'direct'
}

/**
 * A process started in a lab namespace, read by the lab's one process reader (LabProcess: JSON events from stdout,
 * a tail of stderr, its exit), with each event stamped with when we read it, as the session tests compare them.
 */
export class Proc {
  readonly events: Ev[] = []
  readonly exited: Promise<void>
  readonly name: string
  readonly child: ChildProcess
  private readonly process: LabProcess

  // no parameter properties: the benches run this file with Node's type stripping
  constructor (name: string, child: ChildProcess) {
    this.name = name
    this.child = child
    this.process = new LabProcess(name, child)
    this.exited = this.process.whenExited()
    this.process.onChange(() => { this.stamp() })
  }

  get startedAt (): number {
    return this.process.startedAt
  }

  get running (): boolean {
    return this.process.running
  }

  /** null while running; a process that never started has neither code nor signal */
  get exit (): { code: number | null, signal: NodeJS.Signals | null } | null {
    return this.running ? null : { code: this.process.exitCode, signal: this.process.exitSignal }
  }

  get stderr (): string {
    return this.process.stderr.text().slice(-8000)
  }

  find (pred: (e: Ev) => boolean): Ev | undefined {
    return this.events.find(pred)
  }

  filter (pred: (e: Ev) => boolean): Ev[] {
    return this.events.filter(pred)
  }

  /** the first event (already seen or still to come) matching `pred`; rejects on exit or timeout */
  async waitFor (pred: (e: Ev) => boolean, timeoutMs: number, what: string): Promise<Ev> {
    try {
      await this.process.waitFor(() => this.events.some(pred), timeoutMs, what)
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${this.describe()}`)
    }
    return this.events.find(pred) as Ev
  }

  /** lets a gated agent start, with `extra` merged into its config */
  release (extra: Record<string, unknown> = {}): void {
    this.child.stdin?.end(JSON.stringify(extra) + '\n')
  }

  kill (signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.running) this.child.kill(signal)
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves once it has exited */
  async stop (graceMs = 2000): Promise<void> {
    await this.process.stop(graceMs)
  }

  describe (lines = 12): string {
    const events = this.events.filter(e => e.event !== 'progress').slice(-lines).map(e => JSON.stringify(e).slice(0, 500)).join('\n')
    return `--- ${this.name} events (last ${lines}) ---\n${events}\n--- ${this.name} stderr (tail) ---\n${this.stderr.slice(-2000)}`
  }

  /** copies the events LabProcess read since the last change, each with its reading time */
  private stamp (): void {
    for (const { at, event } of this.process.events.slice(this.events.length)) this.events.push({ ...event, at })
  }
}

/** the agent's config, less `gateways` (the lab fills them in) */
export type AgentInit = Omit<AgentConfig, 'gateways'>

/** the agent's result lines as the harness reads them: what test/lab/session-agent.ts wrote, plus when it arrived */
export type StreamResult = Ev & AgentStreamResult
export type PlainResult = Ev & AgentPlainResult
export type SessionResult = Ev & AgentSessionResult

export interface LabInit {
  /** namespace prefix, must start with nm- */
  prefix: string
  peers?: Record<string, NatFlavour>
  /** the rest of the topology: peers sharing a NAT, carrier NATs, WAN emulators */
  topology?: Pick<TopologyOptions, 'sameNatAs' | 'carrierNat' | 'wan'>
  gatewayArgs?: string[]
  /** gateways, each in its own namespace; peers are given all of them. Default 1 */
  gateways?: number
}

export class Lab {
  topo!: Topology
  dir = ''
  /** the running gateway processes, by index */
  readonly gateways: Array<Proc | undefined> = []
  readonly gatewayIds: string[] = []
  readonly init: LabInit
  private readonly env: NodeJS.ProcessEnv
  private readonly procs = new Set<Proc>()

  constructor (init: LabInit) {
    this.init = init
    // the daemons get our environment minus NATMESH_* (a user's config must not change the lab), with Node's
    // compile cache on: every trial starts fresh processes
    this.env = {}
    for (const [key, value] of Object.entries(process.env)) if (!key.startsWith('NATMESH_')) this.env[key] = value
    this.env.NODE_COMPILE_CACHE ??= join(tmpdir(), 'node-compile-cache')
  }

  async start (): Promise<void> {
    if (!existsSync(CLI)) throw new Error(`${CLI} not found: build first (tsc -p tsconfig.json)`)
    if (process.getuid?.() !== 0) throw new Error('the NAT lab needs root (network namespaces, nftables, conntrack)')
    this.dir = await mkdtemp(join(tmpdir(), 'natmesh-sessions-'))
    const gateways = this.init.gateways ?? 1
    this.topo = await createTopology({ ...this.init.topology, prefix: this.init.prefix, gateways, peers: this.init.peers ?? { A: 'cone', B: 'cone' } })
    await Promise.all(Array.from({ length: gateways }, async (_, i) => await this.startGateway(i)))
  }

  /** the first gateway (the only one, unless `gateways` says otherwise) */
  get gateway (): Proc | undefined {
    return this.gateways[0]
  }

  get gatewayId (): string {
    return this.gatewayIds[0] ?? ''
  }

  /** every gateway's udx and tcp address */
  get gatewayAddrs (): string[] {
    return this.gatewayIds.flatMap((id, i) => {
      const ip = this.topo.gatewayIp(i)
      return [`/ip4/${ip}/udp/${GATEWAY_PORT}/udx/p2p/${id}`, `/ip4/${ip}/tcp/${GATEWAY_PORT}/p2p/${id}`]
    })
  }

  /** (Re)starts gateway i with the same identity file and ports; resolves with how long that took. */
  async startGateway (i = 0): Promise<number> {
    const started = Date.now()
    const gw = this.spawn(i === 0 ? 'gateway' : `gateway${i}`, this.topo.gateway(i), [CLI, 'gateway', '--host', '0.0.0.0', '--udp-port', String(GATEWAY_PORT), '--tcp-port', String(GATEWAY_PORT),
      '--announce', this.topo.gatewayIp(i), '--api', '127.0.0.1:8080', '--identity-file', join(this.dir, i === 0 ? 'gateway.key' : `gateway${i}.key`), '--json', '--log-level', 'warn',
      ...GATEWAY_LIMIT_ARGS, ...(this.init.gatewayArgs ?? [])])
    gw.child.stdin?.end()
    this.gateways[i] = gw
    const ev = await gw.waitFor(e => e.event === 'gateway-started', 30_000, 'gateway-started')
    this.gatewayIds[i] = String(ev.peerId)
    return Date.now() - started
  }

  async ensureGateway (): Promise<void> {
    if (this.gateway?.running !== true) await this.startGateway()
  }

  /** starts session-agent.ts in the slot's peer namespace */
  agent (slot: string, init: AgentInit, name = slot): Proc {
    const config = { gateways: this.gatewayAddrs, ...init }
    return this.spawn(name, this.topo.peer(slot), [AGENT, JSON.stringify(config)])
  }

  async flush (slot: string): Promise<void> {
    await this.topo.flushConntrack(slot)
  }

  async down (): Promise<void> {
    await Promise.all([...this.procs].map(async p => { p.kill('SIGKILL'); await p.exited }))
    await this.topo?.down()
    if (this.dir !== '') await rm(this.dir, { recursive: true, force: true })
  }

  private spawn (name: string, ns: string, args: string[]): Proc {
    return this.spawnProcess(name, ns, process.execPath, args)
  }

  /** starts `command` in namespace `ns`; it is killed by down() */
  spawnProcess (name: string, ns: string, command: string, args: string[]): Proc {
    const proc = new Proc(name, this.topo.spawnIn(ns, command, args, { stdio: ['pipe', 'pipe', 'pipe'], env: this.env }))
    this.procs.add(proc)
    void proc.exited.then(() => { this.procs.delete(proc) })
    return proc
  }
}

export async function waitResult (proc: Proc, timeoutMs: number): Promise<SessionResult> {
  return await proc.waitFor(e => e.event === 'session-result', timeoutMs, 'session-result') as SessionResult
}

/** every delivery good, nothing lost, duplicated, reordered or corrupted, no error, no hang */
export function intact (r: SessionResult, count: number): boolean {
  return r.ok && r.received === count && r.good === count && r.duplicates === 0 && r.gaps === 0 && r.corrupt === 0 && r.error === null && r.stuck.length === 0
}

/** one line about a session result, for failure messages */
export function brief (r: SessionResult | undefined): string {
  if (r === undefined) return 'no result'
  return `ok=${r.ok} received=${r.received}/${r.expected} good=${r.good} dup=${r.duplicates} gaps=${r.gaps} corrupt=${r.corrupt} firstBad=${r.firstBadIndex} ` +
    `err=${r.error === null ? '-' : `${r.error.code ?? r.error.name}: ${r.error.message}`} migrations=${r.stats.migrations} path=${r.stats.path} ` +
    `relay=${r.stats.bytesViaRelay} direct=${r.stats.bytesViaDirect} resent=${r.stats.framesResent} dupDropped=${r.stats.duplicatesDropped}` +
    (r.anomalies.length > 0 ? ` anomalies=${JSON.stringify(r.anomalies.slice(0, 3))}` : '')
}

/** nearest-rank quantile; null for no values */
export function quantile (values: number[], q: number): number | null {
  if (values.length === 0) return null
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number
}

export const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }
