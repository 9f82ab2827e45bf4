/** One trial: flush the NATs, release B, wait for its reservation, release A dialling B, wait for decide()'s verdict. */
import { isNated, type NatFlavour } from './nat.js'
import type { Topology } from './topology.js'
import { awaitVerdict, trialEvents, type PunchSettings, type TrialEnd } from './trial-decide.js'
import type { PeerPair } from './trial-launcher.js'
import type { LabProcess } from './trial-process.js'
import { trialResult, type TrialResult } from './trial-result.js'

export interface TrialContext {
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

export async function runTrial (ctx: TrialContext): Promise<TrialResult> {
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
async function waitForVerdict (a: LabProcess, b: LabProcess, settings: PunchSettings, deadline: number, signal: AbortSignal | undefined, timeoutMs: number): Promise<TrialEnd> {
  return await awaitVerdict({
    events: () => trialEvents(a.events, b.events),
    settings,
    deadline,
    watch: (check) => {
      const offs = [a.onChange(check), b.onChange(check)]
      return () => { for (const off of offs) off() }
    },
    undecidable: () => !a.running ? `A ${a.describeExit()} before the trial was decided` : !b.running ? `B ${b.describeExit()} before the trial was decided` : undefined,
    timedOut: `trial timed out: no verdict within ${timeoutMs} ms`,
    signal,
    aborted: 'aborted'
  })
}

export function errorMessage (err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

export async function raceAbort<T> (p: Promise<T>, signal?: AbortSignal): Promise<T> {
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
