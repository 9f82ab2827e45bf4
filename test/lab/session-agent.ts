/**
 * A natmesh peer that opens or accepts verified sessions (or, for comparison, plain libp2p streams), run inside a
 * lab namespace or anywhere:
 *
 *   node test/lab/session-agent.ts '<json config>'
 *
 * Imports the compiled project from dist/ (run `tsc -p tsconfig.json` first). A malformed argument is reported on
 * stderr with exit code 1; SIGTERM/SIGINT stop the peer and exit. Prints JSON lines on stdout, each with `event` and
 * `t` (Date.now() in this process): the peer's own events (started, reservation, connection, hole-punch, ...) and
 * the agent's:
 *
 *   agent-loaded {pid}            modules loaded (with `gate`: now waiting for a line on stdin)
 *   ready {peerId, publicAddrs}   holds a relay reservation (and, when it may punch and UDP is not blocked, a public address)
 *   session-open {id, path, openMs, attempts, round}   initiator: the session is up
 *   session-accepted {id, path}   responder
 *   session-path / session-resuming / session-closed   the session's own events
 *   relayed-closed {peer}         closeRelayedOnDirect: we closed the relayed connection(s) to a peer
 *   progress {id, sent, received, path}   every progressMs
 *   round-wait {round}            roundGate: waiting for a line on stdin before the round
 *   round-reset {round, ms}       rounds: every connection to the target aborted before the round
 *   session-result {...}          per session: see SessionResult
 *   plain-result {...}            per plain stream: see PlainResult
 *   agent-error {message}, stopped
 *
 * Config (a JSON object; unknown keys are an error):
 *   role          'initiator' | 'responder'
 *   gateways      gateway multiaddrs (the gateway's udx and tcp addresses, each ending in /p2p/<id>)
 *   count         messages this side sends per session (the most it sends, with stopAfterSwitchMs / maxSendMs)
 *   expectCount   messages this side expects (default: count)
 *   target        initiator: the responder's peer id
 *   identityFile  default: a new key in a fresh temporary directory
 *   protocol      default '/natmesh-test/verified/1.0.0'
 *   seed          u32 mixed into every message (both sides must agree); default 1
 *   fixedSize     every message this many bytes (both sides must agree) instead of the mixed sizes
 *   peer          pass-through PeerFlags for loadPeerConfig (mode, holePunchTimeoutMs, reconnectInitialDelayMs, ...)
 *   sessions      pass-through session options for createPeer (gracePeriodMs, maxUnackedBytes, ...)
 *   paceEvery, paceMs    sleep paceMs after every paceEvery messages sent (default: full speed)
 *   stopAfterSwitchMs    stop sending (and close) this long after this side moved to the direct path
 *   maxSendMs     stop sending (and close) this long after the session opened, whatever happened
 *   closeRelayedOnDirect when a direct connection to a peer opens, close the relayed connection(s) to it, the way
 *                 stock @libp2p/dcutr does right after its upgrade (natmesh itself keeps them as the fallback)
 *   plain         a plain libp2p stream on the relayed connection (length-prefixed messages, no session layer)
 *                 instead of a session: the comparison for what an upgrade costs without sessions
 *   rounds        initiator: this many sessions (or plain streams) one after the other; before each round after the
 *                 first, every connection to the target is closed, so each round starts relayed and punches again
 *   roundGate     initiator: before each round after the first, wait for a line on stdin (so the orchestrator can
 *                 collect both sides' results first: aborting the connections the moment the initiator is done can
 *                 lose its last ACK, and the responder then waits out its grace period)
 *   progressMs    print progress this often (default 0: never)
 *   pingMs        initiator: while the session runs, ping the responder over the relayed connection this often and
 *                 report the RTTs (relayPingsMs): the queueing delay that the hole punch's own messages sit behind
 *   gate          after loading modules, wait for one line on stdin (a JSON object merged into the config)
 *   readyTimeoutMs default 20000; openTimeoutMs (initiator: keep retrying the open this long) default 10000
 *   exitWhenDone  initiator: stop the peer and exit after its last result (default false)
 *   requirePublicAddress  ready waits for a public UDP address when the peer may punch (default true; false for
 *                 a UDP-blocked peer, which never gets one)
 *
 * Message scheme (both sides generate the same sequence from the seed, so loss, duplication, reordering and
 * corruption are all detectable at every size): message i of direction d (0 = initiator → responder,
 * 1 = responder → initiator) has h = hash(seed, d, i);
 *   size: log-uniform over 1 B .. 64 KiB, size = floor(2^(16·u)) with u = h / 2^32, so each power-of-two band
 *         [2^k, 2^(k+1)) gets 1/16 of the messages (mean ≈ 5.9 KiB); additionally every message with i % 500 == 0
 *         is exactly 1 B and every i % 500 == 1 exactly 64 KiB, so both extremes always occur (or `fixedSize`);
 *   body: ≥ 4 B: u32 big-endian i, then bytes from a xorshift32 stream seeded with hash(h); 1–3 B: bytes from the
 *         same stream (so a 1-byte message still depends on i: a swap of two tiny messages is caught with
 *         probability ≥ 255/256, and in any case by the next message of 4 B or more).
 * The receiver compares every delivery with the message it expects next. On a mismatch it reads the embedded index
 * (≥ 4 B) and checks the whole body against that message to tell a duplicate (index below the expected one) from
 * a gap (index above: the messages in between were lost or reordered) from corruption, then resynchronises.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import readline from 'node:readline'
import type { Connection, PeerId, Stream } from '@libp2p/interface'
import type { NatmeshPeer } from '../../dist/peer/peer.js'
import type { Session, SessionStats } from '../../dist/upgrade/session.js'

export type Role = 'initiator' | 'responder'

export interface AgentConfig {
  role: Role
  gateways: string[]
  count: number
  expectCount?: number
  target?: string
  identityFile?: string
  protocol?: string
  seed?: number
  fixedSize?: number
  peer?: Record<string, unknown>
  sessions?: Record<string, number>
  paceEvery?: number
  paceMs?: number
  stopAfterSwitchMs?: number
  maxSendMs?: number
  closeRelayedOnDirect?: boolean
  plain?: boolean
  rounds?: number
  roundGate?: boolean
  progressMs?: number
  pingMs?: number
  gate?: boolean
  readyTimeoutMs?: number
  openTimeoutMs?: number
  exitWhenDone?: boolean
  requirePublicAddress?: boolean
}

/** what both result kinds share */
export interface StreamResult {
  role: Role
  round: number
  /** every expected message arrived once, in order, intact, and the transfer ended without error */
  ok: boolean
  /** messages expected; -1 when open-ended (stopAfterSwitchMs / maxSendMs: compare with the other side's `sent`) */
  expected: number
  /** deliveries (including bad ones) */
  received: number
  /** deliveries that matched the expected message */
  good: number
  /** first delivery ordinal (0-based) that did not match, and the index expected there; null when none */
  firstBadIndex: number | null
  firstBadExpected: number | null
  duplicates: number
  /** indexes skipped over (lost, or reordered past) */
  gaps: number
  corrupt: number
  /** the first few anomalies */
  anomalies: Array<{ at: number, expected: number, kind: 'duplicate' | 'gap' | 'corrupt', got?: number, size: number }>
  /** messages handed to send() successfully */
  sent: number
  bytesSent: number
  bytesReceived: number
  error: { name: string, code?: string, message: string } | null
  /** ms since the session (stream) opened, this process's clock */
  transferMs: number
  /** the first move to the direct path (ms since open): for a session its 'path' event, for a plain stream the direct connection opening */
  switchAt: number | null
  /** max gap between consecutive deliveries overlapping ±500 ms of switchAt, and the deliveries in that window */
  switchGapMs: number | null
  switchWindowDeliveries: number | null
  /** the largest gap between consecutive deliveries over the whole transfer, when it began (ms since open), and the median gap */
  maxGapMs: number | null
  maxGapAt: number | null
  medianGapMs: number | null
  /** process.cpuUsage() over the transfer (the whole process: both directions, libp2p, crypto) */
  cpuMs: { user: number, system: number }
  t: number
}

export interface SessionResult extends StreamResult {
  event: 'session-result'
  id: string
  /** 'send' / 'receive': still pending STUCK_AFTER_CLOSE_MS after the session's 'closed' event (a hang) */
  stuck: string[]
  /** when the session's 'closed' event fired */
  closedAt: number | null
  /** how session.finished() ended: 'clean', 'failed: …', or 'not within … ms' */
  finished: string
  startPath: string
  openMs?: number
  pathEvents: Array<{ at: number, path: string, migrations: number }>
  resumingEvents: Array<{ at: number, reason: string }>
  /** with pingMs: [ms since open, rtt ms or -1 for a failed ping] over the relayed connection */
  relayPingsMs?: Array<[number, number]>
  stats: SessionStats
}

export interface PlainResult extends StreamResult {
  event: 'plain-result'
  /** how the stream ended: the close event's error, if any */
  closeError: string | null
  /** the connection the stream ran on was closed (by either side) */
  connectionClosedAt: number | null
}

const DEFAULT_PROTOCOL = '/natmesh-test/verified/1.0.0'
const PLAIN_PROTOCOL = '/natmesh-test/plain/1.0.0'
export const MAX_SIZE = 64 * 1024
export const SWITCH_WINDOW_MS = 500
const STUCK_AFTER_CLOSE_MS = 3000
/** after the transfer, session.finished() is given this long */
const FINISH_WAIT_MS = 10_000
/** a plain stream's receive side, after the send side finished, is given this long to end */
const PLAIN_DRAIN_MS = 5000
const CONFIG_KEYS = new Set(['role', 'gateways', 'count', 'expectCount', 'target', 'identityFile', 'protocol', 'seed', 'fixedSize', 'peer', 'sessions',
  'paceEvery', 'paceMs', 'stopAfterSwitchMs', 'maxSendMs', 'closeRelayedOnDirect', 'plain', 'rounds', 'roundGate', 'progressMs', 'pingMs', 'gate',
  'readyTimeoutMs', 'openTimeoutMs', 'exitWhenDone', 'requirePublicAddress'])
const INTEGER_KEYS = ['seed', 'expectCount', 'fixedSize', 'paceEvery', 'paceMs', 'stopAfterSwitchMs', 'maxSendMs', 'rounds', 'progressMs', 'pingMs', 'readyTimeoutMs', 'openTimeoutMs']
const BOOLEAN_KEYS = ['closeRelayedOnDirect', 'plain', 'roundGate', 'gate', 'exitWhenDone', 'requirePublicAddress']

// ---------------------------------------------------------------------------------------------------------------
// message scheme

export interface Scheme {
  seed: number
  fixedSize?: number
}

function mix32 (x: number): number {
  // murmur3 fmix32
  x ^= x >>> 16
  x = Math.imul(x, 0x85ebca6b)
  x ^= x >>> 13
  x = Math.imul(x, 0xc2b2ae35)
  x ^= x >>> 16
  return x >>> 0
}

function messageHash (seed: number, direction: number, index: number): number {
  return mix32(mix32(seed ^ Math.imul(direction + 1, 0x9e3779b9)) ^ Math.imul(index + 1, 0x27d4eb2f) ^ index)
}

export function messageSize (scheme: Scheme, direction: number, index: number): number {
  if (scheme.fixedSize !== undefined) return scheme.fixedSize
  const r = index % 500
  if (r === 0) return 1
  if (r === 1) return MAX_SIZE
  const u = messageHash(scheme.seed, direction, index) / 4294967296
  return Math.min(MAX_SIZE, Math.max(1, Math.floor(2 ** (16 * u))))
}

/** Writes message `index` of `direction` into `out` (which must be messageSize() long). */
function fillMessage (out: Uint8Array, scheme: Scheme, direction: number, index: number): void {
  const h = messageHash(scheme.seed, direction, index)
  let s = mix32(h ^ 0x5bd1e995) || 1
  let offset = 0
  if (out.byteLength >= 4) {
    out[0] = index >>> 24; out[1] = (index >>> 16) & 0xff; out[2] = (index >>> 8) & 0xff; out[3] = index & 0xff
    offset = 4
  }
  for (; offset < out.byteLength; offset += 4) {
    s ^= s << 13; s ^= s >>> 17; s ^= s << 5
    out[offset] = s & 0xff
    if (offset + 1 < out.byteLength) out[offset + 1] = (s >>> 8) & 0xff
    if (offset + 2 < out.byteLength) out[offset + 2] = (s >>> 16) & 0xff
    if (offset + 3 < out.byteLength) out[offset + 3] = (s >>> 24) & 0xff
  }
}

export function makeMessage (scheme: Scheme, direction: number, index: number): Uint8Array {
  const out = new Uint8Array(messageSize(scheme, direction, index))
  fillMessage(out, scheme, direction, index)
  return out
}

let scratch = new Uint8Array(MAX_SIZE)
function matches (message: Uint8Array, scheme: Scheme, direction: number, index: number): boolean {
  if (index < 0 || message.byteLength !== messageSize(scheme, direction, index)) return false
  if (scratch.byteLength < message.byteLength) scratch = new Uint8Array(message.byteLength)
  const expected = scratch.subarray(0, message.byteLength)
  fillMessage(expected, scheme, direction, index)
  return Buffer.compare(Buffer.from(message.buffer, message.byteOffset, message.byteLength), Buffer.from(expected.buffer, expected.byteOffset, expected.byteLength)) === 0
}

/** Checks deliveries against the expected sequence; see the file comment. */
export class Verifier {
  readonly scheme: Scheme
  readonly direction: number
  /** -1: open-ended */
  readonly expected: number
  next = 0
  received = 0
  good = 0
  bytes = 0
  duplicates = 0
  gaps = 0
  corrupt = 0
  firstBadIndex: number | null = null
  firstBadExpected: number | null = null
  readonly anomalies: StreamResult['anomalies'] = []
  /** delivery times (performance.now()) */
  private times: Float64Array

  constructor (scheme: Scheme, direction: number, expected: number) {
    this.scheme = scheme
    this.direction = direction
    this.expected = expected
    this.times = new Float64Array(Math.max(expected, 1024) + 16)
  }

  push (message: Uint8Array): void {
    const at = this.received++
    if (at >= this.times.length) {
      const grown = new Float64Array(this.times.length * 2)
      grown.set(this.times)
      this.times = grown
    }
    this.times[at] = performance.now()
    this.bytes += message.byteLength
    if (matches(message, this.scheme, this.direction, this.next)) {
      this.next++
      this.good++
      return
    }
    const expectedHere = this.next
    if (this.firstBadIndex === null) {
      this.firstBadIndex = at
      this.firstBadExpected = expectedHere
    }
    let kind: 'duplicate' | 'gap' | 'corrupt' = 'corrupt'
    let got: number | undefined
    if (message.byteLength >= 4) {
      const embedded = new DataView(message.buffer, message.byteOffset, 4).getUint32(0)
      if (matches(message, this.scheme, this.direction, embedded)) {
        got = embedded
        kind = embedded < this.next ? 'duplicate' : 'gap'
      }
    }
    if (kind === 'duplicate') {
      this.duplicates++
    } else if (kind === 'gap') {
      this.gaps += (got as number) - this.next
      this.next = (got as number) + 1
    } else {
      this.corrupt++
      this.next++
    }
    if (this.anomalies.length < 10) this.anomalies.push({ at, expected: expectedHere, kind, ...(got !== undefined ? { got } : {}), size: message.byteLength })
  }

  get intact (): boolean {
    return this.firstBadIndex === null && this.good === this.received && (this.expected < 0 || this.received === this.expected)
  }

  /** delivery times relative to `origin` */
  timesSince (origin: number): number[] {
    return Array.from(this.times.subarray(0, this.received), t => t - origin)
  }
}

/** max gap between consecutive deliveries whose interval overlaps [at - window, at + window] */
export function gapAround (times: ArrayLike<number>, at: number, window = SWITCH_WINDOW_MS): { gap: number | null, deliveries: number } {
  let gap: number | null = null
  let deliveries = 0
  for (let k = 0; k < times.length; k++) {
    const t = times[k] as number
    if (t >= at - window && t <= at + window) deliveries++
    if (k === 0) continue
    const prev = times[k - 1] as number
    if (t >= at - window && prev <= at + window) gap = Math.max(gap ?? 0, t - prev)
  }
  return { gap, deliveries }
}

function round (x: number, digits = 2): number {
  return Number(x.toFixed(digits))
}

/** the timing and verification fields of a result */
function summarize (verifier: Verifier, origin: number, switchAt: number | null): Pick<StreamResult, 'switchAt' | 'switchGapMs' | 'switchWindowDeliveries' | 'maxGapMs' | 'maxGapAt' | 'medianGapMs'> {
  const times = verifier.timesSince(origin)
  const gaps: number[] = []
  let maxGapMs: number | null = null
  let maxGapAt: number | null = null
  for (let k = 1; k < times.length; k++) {
    const g = (times[k] as number) - (times[k - 1] as number)
    gaps.push(g)
    if (maxGapMs === null || g > maxGapMs) { maxGapMs = g; maxGapAt = times[k - 1] as number }
  }
  gaps.sort((a, b) => a - b)
  const around = switchAt === null ? undefined : gapAround(times, switchAt)
  return {
    switchAt: switchAt === null ? null : round(switchAt),
    switchGapMs: around?.gap == null ? null : round(around.gap),
    switchWindowDeliveries: around?.deliveries ?? null,
    maxGapMs: maxGapMs === null ? null : round(maxGapMs),
    maxGapAt: maxGapAt === null ? null : round(maxGapAt),
    medianGapMs: gaps.length === 0 ? null : round(gaps[gaps.length >> 1] as number, 3)
  }
}

function verdict (verifier: Verifier): Pick<StreamResult, 'received' | 'good' | 'firstBadIndex' | 'firstBadExpected' | 'duplicates' | 'gaps' | 'corrupt' | 'anomalies' | 'bytesReceived' | 'expected'> {
  return {
    expected: verifier.expected,
    received: verifier.received,
    good: verifier.good,
    firstBadIndex: verifier.firstBadIndex,
    firstBadExpected: verifier.firstBadExpected,
    duplicates: verifier.duplicates,
    gaps: verifier.gaps,
    corrupt: verifier.corrupt,
    anomalies: verifier.anomalies,
    bytesReceived: verifier.bytes
  }
}

// ---------------------------------------------------------------------------------------------------------------
// the agent

function out (event: Record<string, unknown> & { event: string }): void {
  process.stdout.write(JSON.stringify({ ...event, t: Date.now() }) + '\n')
}

function fail (message: string): never {
  process.stderr.write(`session-agent: ${message}\n` +
    'usage: node test/lab/session-agent.ts \'{"role":"responder"|"initiator","gateways":[...],"count":N,"target":"<peer id>",...}\' (see the file comment)\n')
  process.exit(1)
}

export function parseConfig (text: string | undefined): AgentConfig {
  if (text === undefined || text.trim() === '') fail('missing the JSON config argument')
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (err) {
    fail(`the config is not valid JSON (${(err as Error).message})`)
  }
  return checkConfig(value, (value as { gate?: unknown } | null)?.gate !== true)
}

/** `complete`: the config is final (a gated agent gets the rest, e.g. its target, on stdin) */
function checkConfig (value: unknown, complete = true): AgentConfig {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('the config must be a JSON object')
  const c = value as Record<string, unknown>
  const unknown = Object.keys(c).filter(k => !CONFIG_KEYS.has(k))
  if (unknown.length > 0) fail(`unknown config key(s): ${unknown.join(', ')}`)
  if (c.role !== 'initiator' && c.role !== 'responder') fail(`role must be "initiator" or "responder", got ${JSON.stringify(c.role)}`)
  if (!Array.isArray(c.gateways) || c.gateways.length === 0 || !c.gateways.every(g => typeof g === 'string')) fail('gateways must be a non-empty array of multiaddr strings')
  if (!Number.isInteger(c.count) || (c.count as number) < 0 || (c.count as number) > 0xffffffff) fail(`count must be an integer 0..2^32-1, got ${JSON.stringify(c.count)}`)
  if (c.target !== undefined && (typeof c.target !== 'string' || c.target === '')) fail('target must be a peer id string')
  if (complete && c.role === 'initiator' && c.target === undefined) fail('an initiator needs "target" (the responder\'s peer id)')
  for (const key of INTEGER_KEYS) {
    if (c[key] !== undefined && (!Number.isInteger(c[key]) || (c[key] as number) < 0)) fail(`${key} must be a non-negative integer, got ${JSON.stringify(c[key])}`)
  }
  if (c.fixedSize !== undefined && ((c.fixedSize as number) < 1 || (c.fixedSize as number) > 1024 * 1024)) fail('fixedSize must be 1 .. 1048576')
  if (c.rounds !== undefined && (c.rounds as number) < 1) fail('rounds must be at least 1')
  for (const key of ['identityFile', 'protocol']) {
    if (c[key] !== undefined && typeof c[key] !== 'string') fail(`${key} must be a string`)
  }
  for (const key of ['peer', 'sessions']) {
    if (c[key] !== undefined && (typeof c[key] !== 'object' || c[key] === null || Array.isArray(c[key]))) fail(`${key} must be an object`)
  }
  for (const key of BOOLEAN_KEYS) {
    if (c[key] !== undefined && typeof c[key] !== 'boolean') fail(`${key} must be true or false`)
  }
  return c as unknown as AgentConfig
}

/** stdin, line by line, on demand (the gate and the round gates) */
class Lines {
  private readonly queue: string[] = []
  private waiter?: (line: string | undefined) => void
  private ended = false

  constructor () {
    const rl = readline.createInterface({ input: process.stdin })
    rl.on('line', (line) => {
      if (this.waiter !== undefined) { const w = this.waiter; this.waiter = undefined; w(line) } else this.queue.push(line)
    })
    rl.on('close', () => {
      this.ended = true
      const w = this.waiter
      this.waiter = undefined
      w?.(undefined)
    })
  }

  /** the next line; undefined once stdin has ended */
  async next (): Promise<string | undefined> {
    const queued = this.queue.shift()
    if (queued !== undefined) return queued
    if (this.ended) return undefined
    return await new Promise(resolve => { this.waiter = resolve })
  }
}

async function sleep (ms: number): Promise<void> {
  await new Promise(resolve => setTimeout(resolve, ms))
}

function errorInfo (err: unknown): { name: string, code?: string, message: string } {
  if (err instanceof Error) {
    const code = (err as Error & { code?: unknown }).code
    return { name: err.name, ...(typeof code === 'string' ? { code } : {}), message: err.message }
  }
  return { name: 'Error', message: String(err) }
}

function isRelayedConnection (connection: Connection): boolean {
  return connection.remoteAddr.toString().includes('/p2p-circuit')
}

function cpuSince (start: NodeJS.CpuUsage): { user: number, system: number } {
  const used = process.cpuUsage(start)
  return { user: round(used.user / 1000, 1), system: round(used.system / 1000, 1) }
}

/** Sends message after message (paced, capped) until told to stop; `shouldStop` is checked before each. */
async function sendAll (count: number, config: AgentConfig, shouldStop: () => boolean, send: (i: number) => Promise<number>): Promise<{ sent: number, bytes: number }> {
  let sent = 0
  let bytes = 0
  for (let i = 0; i < count && !shouldStop(); i++) {
    bytes += await send(i)
    sent++
    if (config.paceEvery !== undefined && config.paceEvery > 0 && (i + 1) % config.paceEvery === 0 && (config.paceMs ?? 0) > 0) await sleep(config.paceMs as number)
  }
  return { sent, bytes }
}

async function main (): Promise<void> {
  let config = parseConfig(process.argv[2])
  if (process.argv.length > 3) fail(`expected one argument (the JSON config), got ${process.argv.length - 2}`)
  const needsStdin = config.gate === true || config.roundGate === true
  const lines = needsStdin ? new Lines() : undefined

  let peer: NatmeshPeer | undefined
  let tmp: string | undefined
  let stopping = false
  const stop = async (code: number): Promise<never> => {
    if (stopping) process.exit(code)
    stopping = true
    const timer = setTimeout(() => { process.exit(code) }, 3000)
    try { await peer?.stop() } catch { /* exiting anyway */ }
    if (tmp !== undefined) await rm(tmp, { recursive: true, force: true }).catch(() => {})
    clearTimeout(timer)
    out({ event: 'stopped' })
    process.exit(code)
  }
  process.on('SIGTERM', () => { void stop(0) })
  process.on('SIGINT', () => { void stop(130) })
  // keep going through stray errors (a daemon would), but say so: the tests treat agent-error as a finding
  process.on('unhandledRejection', (err) => { out({ event: 'agent-error', message: `unhandled rejection: ${err instanceof Error ? err.stack ?? err.message : String(err)}` }) })
  process.on('uncaughtException', (err) => { out({ event: 'agent-error', message: `uncaught exception: ${err.stack ?? err.message}` }) })

  const [{ loadPeerConfig }, { createPeer }, { loadOrCreateIdentity }, { peerIdFromString }] = await Promise.all([
    import('../../dist/config/index.js'),
    import('../../dist/peer/peer.js'),
    import('../../dist/core/identity.js'),
    import('@libp2p/peer-id')
  ])
  out({ event: 'agent-loaded', pid: process.pid, role: config.role })
  if (config.gate === true) {
    const line = await (lines as Lines).next()
    let extra: unknown = {}
    if (line !== undefined && line.trim() !== '') {
      try { extra = JSON.parse(line) } catch { fail(`the gate line is not JSON: ${line}`) }
    }
    config = checkConfig({ ...config, ...(extra as Record<string, unknown>) })
  }

  const scheme: Scheme = { seed: config.seed ?? 1, ...(config.fixedSize !== undefined ? { fixedSize: config.fixedSize } : {}) }
  const protocol = config.protocol ?? DEFAULT_PROTOCOL
  const expectCount = config.expectCount ?? config.count
  const openEnded = config.stopAfterSwitchMs !== undefined || config.maxSendMs !== undefined
  let identityFile = config.identityFile
  if (identityFile === undefined) {
    tmp = await mkdtemp(join(tmpdir(), 'natmesh-agent-'))
    identityFile = join(tmp, 'peer.key')
  }
  const peerConfig = await loadPeerConfig({
    env: {},
    flags: { host: '0.0.0.0', ...(config.peer ?? {}), gateways: config.gateways, identityFile }
  })
  const identity = await loadOrCreateIdentity(peerConfig.identityFile)
  peer = await createPeer(peerConfig, { privateKey: identity.privateKey, sessions: config.sessions ?? {} })
  const p = peer
  p.addEventListener('event', (evt) => { out({ ...evt.detail }) })

  if (config.closeRelayedOnDirect === true) {
    // what stock @libp2p/dcutr does once its direct dial succeeds: `await relayedConnection.close()`
    p.node.addEventListener('connection:open', (evt) => {
      const direct = evt.detail
      if (isRelayedConnection(direct)) return
      const relayed = p.node.getConnections(direct.remotePeer).filter(c => isRelayedConnection(c) && c.status === 'open')
      if (relayed.length === 0) return
      out({ event: 'relayed-closed', peer: direct.remotePeer.toString(), count: relayed.length })
      for (const c of relayed) void c.close().catch(() => {})
    })
  }

  /** when this side first had a direct connection to `remote`, as performance.now(); undefined while it has none */
  const directSince = new Map<string, number>()
  p.node.addEventListener('connection:open', (evt) => {
    const key = evt.detail.remotePeer.toString()
    if (!isRelayedConnection(evt.detail) && !directSince.has(key)) directSince.set(key, performance.now())
  })
  p.node.addEventListener('connection:close', (evt) => {
    const key = evt.detail.remotePeer.toString()
    if (!p.node.getConnections(evt.detail.remotePeer).some(c => !isRelayedConnection(c) && c.status === 'open')) directSince.delete(key)
  })

  const runSession = async (session: Session, role: Role, roundNo: number, extra: { openMs?: number }): Promise<SessionResult> => {
    const openedAt = performance.now()
    const cpuStart = process.cpuUsage()
    const sendDir = role === 'initiator' ? 0 : 1
    const verifier = new Verifier(scheme, 1 - sendDir, openEnded ? -1 : expectCount)
    const startPath = session.path
    const pathEvents: SessionResult['pathEvents'] = []
    const resumingEvents: SessionResult['resumingEvents'] = []
    const since = (): number => round(performance.now() - openedAt)
    let directAt: number | undefined
    session.addEventListener('path', (evt) => {
      pathEvents.push({ at: since(), path: evt.detail.path, migrations: evt.detail.migrations })
      if (evt.detail.path === 'direct') directAt ??= performance.now()
      out({ event: 'session-path', id: session.id, role, path: evt.detail.path, migrations: evt.detail.migrations })
    })
    session.addEventListener('resuming', (evt) => {
      resumingEvents.push({ at: since(), reason: evt.detail.reason })
      out({ event: 'session-resuming', id: session.id, role, reason: evt.detail.reason })
    })
    let closedAt: number | undefined
    let closedError: Error | undefined
    let onClosed: (() => void) | undefined
    const closed = new Promise<void>(resolve => { onClosed = resolve })
    session.addEventListener('closed', (evt) => {
      closedAt = since()
      closedError = evt.detail.error
      out({ event: 'session-closed', id: session.id, role, ...(evt.detail.error != null ? { error: errorInfo(evt.detail.error) } : {}) })
      onClosed?.()
    })
    let sent = 0
    let error: unknown
    const progress = (config.progressMs ?? 0) > 0
      ? setInterval(() => { out({ event: 'progress', id: session.id, role, round: roundNo, sent, received: verifier.received, path: session.path }) }, config.progressMs)
      : undefined
    const relayPings: Array<[number, number]> = []
    let sessionDone = false
    const pinging = (config.pingMs ?? 0) > 0 && role === 'initiator'
      ? (async () => {
          while (!sessionDone) {
            const relayed = p.node.getConnections(session.peer).find(c => c.status === 'open' && isRelayedConnection(c))
            if (relayed === undefined) break
            const at = since()
            try {
              const { rttMs } = await p.ping(session.peer, relayed)
              relayPings.push([at, round(rttMs)])
            } catch {
              relayPings.push([at, -1])
            }
            await sleep(config.pingMs as number)
          }
        })()
      : undefined
    const shouldStop = (): boolean =>
      (config.stopAfterSwitchMs !== undefined && directAt !== undefined && performance.now() - directAt >= config.stopAfterSwitchMs) ||
      (config.maxSendMs !== undefined && performance.now() - openedAt >= config.maxSendMs)
    let sendSettled = false
    let receiveSettled = false
    let bytesSent = 0
    const sending = sendAll(config.count, config, shouldStop, async (i) => {
      const message = makeMessage(scheme, sendDir, i)
      await session.send(message)
      sent++
      bytesSent += message.byteLength
      return message.byteLength
    }).then(async () => { await session.close() }).finally(() => { sendSettled = true })
    const receiving = (async () => {
      for await (const message of session) verifier.push(message)
    })().finally(() => { receiveSettled = true })
    // once the session has ended, send()/close() and the iterator must return or throw promptly: if one is still
    // pending STUCK_AFTER_CLOSE_MS later, the result says so (stuck) instead of the agent hanging with it
    const both = Promise.allSettled([sending, receiving])
    await Promise.race([both, closed.then(async () => { await Promise.race([both, sleep(STUCK_AFTER_CLOSE_MS)]) })])
    const stuck = [...(sendSettled ? [] : ['send']), ...(receiveSettled ? [] : ['receive'])]
    if (stuck.length === 0) {
      for (const s of await both) if (s.status === 'rejected' && error === undefined) error = s.reason
    } else {
      error = closedError ?? new Error(`session ended but ${stuck.join(' and ')} did not settle`)
      out({ event: 'agent-error', message: `session ${session.id} ended (${session.stats().state}) but ${stuck.join(' and ')} still pending ${STUCK_AFTER_CLOSE_MS} ms later` })
    }
    // close() resolves once our messages are acknowledged; finished() once the session ended cleanly on both
    // sides (the remote has our last ACK): only then may an application drop its connections without leaving the
    // remote waiting for that ACK until its grace period runs out
    let finished: string = 'failed'
    if (stuck.length === 0 && error === undefined) {
      finished = await Promise.race([
        session.finished().then(() => 'clean', (err: unknown) => `failed: ${errorInfo(err).message}`),
        sleep(FINISH_WAIT_MS).then(() => `not within ${FINISH_WAIT_MS} ms`)
      ])
    }
    sessionDone = true
    clearInterval(progress)
    await pinging
    const result: SessionResult = {
      event: 'session-result',
      role,
      round: roundNo,
      id: session.id,
      ok: verifier.intact && error === undefined && (openEnded || sent === config.count) && stuck.length === 0 && finished === 'clean',
      ...verdict(verifier),
      sent,
      bytesSent,
      error: error === undefined ? null : errorInfo(error),
      stuck,
      finished,
      closedAt: closedAt ?? null,
      startPath,
      ...(extra.openMs !== undefined ? { openMs: round(extra.openMs) } : {}),
      transferMs: since(),
      pathEvents,
      resumingEvents,
      ...summarize(verifier, openedAt, directAt === undefined ? null : directAt - openedAt),
      ...(pinging !== undefined ? { relayPingsMs: relayPings } : {}),
      cpuMs: cpuSince(cpuStart),
      stats: session.stats(),
      t: Date.now()
    }
    process.stdout.write(JSON.stringify(result) + '\n')
    return result
  }

  /** a plain libp2p stream: u32 length + message, both ways, no acknowledgements, no resumption */
  const runPlain = async (stream: Stream, connection: Connection, role: Role, roundNo: number): Promise<PlainResult> => {
    const openedAt = performance.now()
    const cpuStart = process.cpuUsage()
    const since = (): number => round(performance.now() - openedAt)
    const sendDir = role === 'initiator' ? 0 : 1
    const verifier = new Verifier(scheme, 1 - sendDir, openEnded ? -1 : expectCount)
    const remote = connection.remotePeer.toString()
    let connectionClosedAt: number | undefined
    const onConnectionClose = (evt: CustomEvent<Connection>): void => {
      if (evt.detail === connection) connectionClosedAt ??= since()
    }
    p.node.addEventListener('connection:close', onConnectionClose)
    // receive: reassemble length-prefixed messages
    let pending = new Uint8Array(0)
    stream.addEventListener('message', (evt) => {
      const chunk = evt.data instanceof Uint8Array ? evt.data : evt.data.subarray()
      let buf = pending.byteLength === 0 ? chunk : Uint8Array.from(Buffer.concat([pending, chunk]))
      while (buf.byteLength >= 4) {
        const length = new DataView(buf.buffer, buf.byteOffset, 4).getUint32(0)
        if (buf.byteLength < 4 + length) break
        verifier.push(buf.slice(4, 4 + length))
        buf = buf.subarray(4 + length)
      }
      pending = buf.slice()
    })
    let closeError: string | null = null
    let onEnd: (() => void) | undefined
    const ended = new Promise<void>(resolve => { onEnd = resolve })
    stream.addEventListener('close', (evt) => {
      if (evt.error != null) closeError = `${evt.error.name}: ${evt.error.message}`
      onEnd?.()
    })
    stream.addEventListener('remoteCloseWrite', () => { onEnd?.() })
    const drained = async (): Promise<void> => {
      if (!stream.writableNeedsDrain) return
      await new Promise<void>((resolve) => {
        const done = (): void => { stream.removeEventListener('drain', done); stream.removeEventListener('close', done); resolve() }
        stream.addEventListener('drain', done)
        stream.addEventListener('close', done)
      })
    }
    let error: unknown
    const shouldStop = (): boolean => {
      const direct = directSince.get(remote)
      return stream.status !== 'open' || stream.writeStatus !== 'writable' ||
        (config.stopAfterSwitchMs !== undefined && direct !== undefined && performance.now() - direct >= config.stopAfterSwitchMs) ||
        (config.maxSendMs !== undefined && performance.now() - openedAt >= config.maxSendMs)
    }
    let sent = 0
    let bytesSent = 0
    try {
      await sendAll(config.count, config, shouldStop, async (i) => {
        const message = makeMessage(scheme, sendDir, i)
        const header = new Uint8Array(4)
        new DataView(header.buffer).setUint32(0, message.byteLength)
        // one send() per message, so a message is either handed to the stream whole or not at all
        const ok = stream.send(Uint8Array.from(Buffer.concat([header, message])))
        sent++
        bytesSent += message.byteLength
        if (!ok) await drained()
        return message.byteLength
      })
      await stream.close({ signal: AbortSignal.timeout(PLAIN_DRAIN_MS) })
    } catch (err) {
      error = err
    }
    await Promise.race([ended, sleep(PLAIN_DRAIN_MS)])
    p.node.removeEventListener('connection:close', onConnectionClose)
    const direct = directSince.get(remote)
    const result: PlainResult = {
      event: 'plain-result',
      role,
      round: roundNo,
      ok: verifier.intact && error === undefined && closeError === null && (openEnded || sent === config.count),
      ...verdict(verifier),
      sent,
      bytesSent,
      error: error === undefined ? null : errorInfo(error),
      closeError,
      connectionClosedAt: connectionClosedAt ?? null,
      transferMs: since(),
      ...summarize(verifier, openedAt, direct === undefined || direct < openedAt ? null : direct - openedAt),
      cpuMs: cpuSince(cpuStart),
      t: Date.now()
    }
    if (stream.status === 'open') stream.abort(new Error('plain transfer over'))
    process.stdout.write(JSON.stringify(result) + '\n')
    return result
  }

  if (config.role === 'responder') {
    let rounds = 0
    p.handleSessions(protocol, async (session) => {
      const n = ++rounds
      out({ event: 'session-accepted', id: session.id, path: session.path, peer: session.peer.toString() })
      // the handler returns at once; the session runs on its own
      void runSession(session, 'responder', n, {}).catch((err: unknown) => { out({ event: 'agent-error', message: `session ${session.id}: ${errorInfo(err).message}` }) })
    })
    await p.node.handle(PLAIN_PROTOCOL, (stream, connection) => {
      const n = ++rounds
      void runPlain(stream, connection, 'responder', n).catch((err: unknown) => { out({ event: 'agent-error', message: `plain stream: ${errorInfo(err).message}` }) })
    }, { runOnLimitedConnection: true })
  }

  await p.start()
  const readyDeadline = Date.now() + (config.readyTimeoutMs ?? 20_000)
  const punching = p.config.mode === 'opportunistic' && p.config.natTraversal.enabled && config.requirePublicAddress !== false
  // a peer that found UDP blocked can never punch, and so never learns a public address to wait for
  const mayPunch = (): boolean => punching && p.natReport()?.natType !== 'udp-blocked'
  while (p.relayAddresses().length === 0 || (mayPunch() && p.publicAddresses().length === 0)) {
    if (Date.now() > readyDeadline) {
      out({ event: 'agent-error', message: `not ready within ${config.readyTimeoutMs ?? 20_000} ms (reservation: ${p.relayAddresses().length > 0}, public address: ${p.publicAddresses().length > 0})` })
      await stop(1)
    }
    await sleep(10)
  }
  out({ event: 'ready', peerId: p.peerId.toString(), publicAddrs: p.publicAddresses().map(String), relayAddrs: p.relayAddresses().map(String) })
  if (config.role === 'responder') return

  const target = config.target as string
  const targetId: PeerId = peerIdFromString(target)
  for (let roundNo = 1; roundNo <= (config.rounds ?? 1); roundNo++) {
    if (roundNo > 1) {
      if (config.roundGate === true) {
        // before the reset: the orchestrator first collects both sides' results of the last round
        out({ event: 'round-wait', round: roundNo })
        if (await (lines as Lines).next() === undefined) break
      }
      // start over: no connection to the target, so the next round dials through the relay and punches anew;
      // abort rather than close: a graceful close (node.hangUp) takes about a second here for nothing we need
      const resetStart = performance.now()
      for (const c of p.node.getConnections(targetId)) c.abort(new Error('next round'))
      const deadline = Date.now() + 5000
      while (p.node.getConnections(targetId).length > 0 && Date.now() < deadline) await sleep(10)
      out({ event: 'round-reset', round: roundNo, ms: round(performance.now() - resetStart), left: p.node.getConnections(targetId).length })
    }
    const openStart = performance.now()
    const openDeadline = Date.now() + (config.openTimeoutMs ?? 10_000)
    let attempts = 0
    let opened: { session: Session } | { stream: Stream, connection: Connection } | undefined
    while (opened === undefined) {
      attempts++
      try {
        if (config.plain === true) {
          const relayed = await p.connect(target)
          if (!isRelayedConnection(relayed)) throw new Error(`expected a relayed connection, got ${relayed.remoteAddr.toString()}`)
          opened = { stream: await relayed.newStream(PLAIN_PROTOCOL, { runOnLimitedConnection: true, signal: AbortSignal.timeout(10_000) }), connection: relayed }
        } else {
          opened = { session: await p.openSession(target, protocol) }
        }
      } catch (err) {
        if (Date.now() > openDeadline) {
          out({ event: 'agent-error', message: `round ${roundNo}: opening to ${target} failed after ${attempts} attempt(s): ${errorInfo(err).message}` })
          await stop(1)
        }
        await sleep(100)
      }
    }
    const openMs = performance.now() - openStart
    if ('session' in opened) {
      out({ event: 'session-open', id: opened.session.id, path: opened.session.path, openMs: round(openMs), attempts, round: roundNo })
      await runSession(opened.session, 'initiator', roundNo, { openMs })
    } else {
      out({ event: 'plain-open', round: roundNo, openMs: round(openMs), attempts })
      await runPlain(opened.stream, opened.connection, 'initiator', roundNo)
    }
  }
  out({ event: 'rounds-done' })
  if (config.exitWhenDone === true) await stop(0)
}

main().catch((err: unknown) => {
  out({ event: 'agent-error', message: `fatal: ${err instanceof Error ? err.stack ?? err.message : String(err)}` })
  process.exit(1)
})
