/**
 * A natmesh peer announcing one station and visiting others by name, run inside a lab namespace:
 *
 *   node test/lab/station-agent.ts '<json config>'
 *
 * Imports the compiled project from dist/. Prints JSON lines on stdout: the peer's own events (reservation,
 * station-published, gateway-replaced, hole-punch, ...) and the agent's:
 *
 *   ready {peerId}                       running, echoing sessions on ECHO_PROTOCOL
 *   visit-result {round, results}        one per `visit` command: see VisitResult
 *   agent-error {message}, stray-error {message} (an uncaught error, survived as the daemon does)
 *
 * Commands, one JSON object per line on stdin, each run as it arrives (several may run at once):
 *   {"cmd":"visit","round":R,"stations":[{"name":N,"waitDirectMs":W},...],"fresh":B,"parallel":P}  for each station
 *       (one after the other, or all at once with `parallel`): look it up, open a session by name (with `fresh`, a new one; else the one kept from an earlier
 *       visit, if any), check an echo, wait up to W ms for the session to move to the direct path, echo again; then
 *       report
 *
 * Config (JSON): { gateways: string[], station: string, peer?: PeerFlags } (peer flags pass through to the config)
 */
import readline from 'node:readline'
import { mkdtemp } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadPeerConfig } from '../../dist/config/index.js'
import type { PeerFlags } from '../../dist/config/index.js'
import { loadOrCreateIdentity } from '../../dist/core/identity.js'
import { createPeer } from '../../dist/peer/peer.js'
import type { Session } from '../../dist/upgrade/session.js'

export const ECHO_PROTOCOL = '/natmesh-test/station-echo/1.0.0'

export interface VisitResult {
  station: string
  ok: boolean
  /** a session opened before was used again (it survived whatever happened since) */
  reused: boolean
  lookupMs?: number
  hops?: number
  /** from the start of the visit to the first echo */
  echoMs?: number
  path?: 'relay' | 'direct'
  error?: string
}

interface AgentConfig { gateways: string[], station: string, peer?: PeerFlags }

function out (event: Record<string, unknown> & { event: string }): void {
  process.stdout.write(JSON.stringify({ ...event, t: Date.now() }) + '\n')
}

// like the `natmesh peer` daemon (src/cli/daemon.ts), keep running through stray errors: yamux may throw from a
// microtask when it sends a window update on a connection that has just closed
process.on('uncaughtException', (err) => { out({ event: 'stray-error', message: err.message }) })
process.on('unhandledRejection', (err) => { out({ event: 'stray-error', message: err instanceof Error ? err.message : String(err) }) })

const config = JSON.parse(process.argv[2] ?? '{}') as AgentConfig
const dir = await mkdtemp(join(tmpdir(), 'natmesh-station-agent-'))
const peerConfig = await loadPeerConfig({
  env: {},
  flags: { gateways: config.gateways, stations: [config.station], identityFile: join(dir, 'peer.key'), logLevel: 'warn', ...config.peer }
})
const identity = await loadOrCreateIdentity(peerConfig.identityFile)
const peer = await createPeer(peerConfig, { privateKey: identity.privateKey })
peer.addEventListener('event', (evt) => { out({ ...evt.detail }) })
peer.handleSessions(ECHO_PROTOCOL, async (session) => {
  try {
    for await (const message of session) await session.send(message)
  } catch {
    // the visitor went away
  }
})
await peer.start()
out({ event: 'ready', peerId: peer.peerId.toString() })

const sessions = new Map<string, Session>()

async function echo (session: Session, text: string): Promise<void> {
  const reply = session[Symbol.asyncIterator]().next()
  await session.send(new TextEncoder().encode(text), { signal: AbortSignal.timeout(20_000) })
  const { value } = await Promise.race([reply, new Promise<never>((_resolve, reject) => setTimeout(() => { reject(new Error('no echo within 20 s')) }, 20_000))])
  if (new TextDecoder().decode(value) !== text) throw new Error('echo did not match')
}

interface VisitCommand { cmd: string, round: string, stations: Array<{ name: string, waitDirectMs?: number }>, fresh?: boolean, parallel?: boolean }

async function visit ({ name: station, waitDirectMs = 0 }: { name: string, waitDirectMs?: number }, command: VisitCommand): Promise<VisitResult> {
  const started = Date.now()
  const { round, fresh = false } = command
  const result: VisitResult = { station, ok: false, reused: !fresh && sessions.has(station) }
  try {
    const found = await peer.lookup(station, { signal: AbortSignal.timeout(15_000) })
    result.lookupMs = found.ms
    result.hops = found.hops
    if (found.record == null || found.record.withdrawn) throw new Error(`station ${station} not found (${JSON.stringify(found)})`)
    let session = fresh ? undefined : sessions.get(station)
    if (session == null) {
      session = await peer.openSession(`station:${station}`, ECHO_PROTOCOL)
      if (!fresh) sessions.set(station, session)
    }
    await echo(session, `${round} ${station} 1`)
    result.echoMs = Date.now() - started
    const deadline = Date.now() + waitDirectMs
    while (session.path !== 'direct' && Date.now() < deadline) await new Promise(resolve => setTimeout(resolve, 50))
    await echo(session, `${round} ${station} 2`)
    result.path = session.path === 'none' ? undefined : session.path
    result.ok = true
  } catch (err) {
    result.error = err instanceof Error ? err.message : String(err)
  }
  return result
}

async function run (line: string): Promise<void> {
  try {
    const command = JSON.parse(line) as VisitCommand
    if (command.cmd !== 'visit') throw new Error(`unknown command ${command.cmd}`)
    // one at a time unless asked: 30 visits with hole punches all at once overload a small lab machine
    const results: VisitResult[] = []
    if (command.parallel === true) results.push(...await Promise.all(command.stations.map(async station => visit(station, command))))
    else for (const station of command.stations) results.push(await visit(station, command))
    out({ event: 'visit-result', round: command.round, results })
  } catch (err) {
    out({ event: 'agent-error', message: err instanceof Error ? err.message : String(err) })
  }
}

for await (const line of readline.createInterface({ input: process.stdin })) void run(line)
