import { Command, InvalidArgumentError } from 'commander'
import {
  assertRoot, createTopology, isNated, judgeEventFiles, NAT_FLAVOURS, parseFlavour, parseWanLink, recommendedPeerArgs, removeLab, REQUIRED_PREFIX, runTrials
} from '../lab/index.js'
import type { NatedFlavour, NatFlavour, Topology, TopologyOptions, TrialResult, TrialSummary, WanLink, WanLinkOptions } from '../lab/index.js'

const FLAVOURS = NAT_FLAVOURS.join(' | ')

function flavourArg (value: string): NatFlavour {
  try {
    return parseFlavour(value)
  } catch (err) {
    throw new InvalidArgumentError(err instanceof Error ? err.message : String(err))
  }
}

function natedFlavourArg (value: string): NatedFlavour {
  const flavour = flavourArg(value)
  if (!isNated(flavour)) throw new InvalidArgumentError('a carrier NAT needs a NAT flavour, not "public"')
  return flavour
}

const WAN_SPEC_KEYS = { delay: 'delayMs', jitter: 'jitterMs', loss: 'lossPercent' } as const

/** "delay=40,jitter=5,loss=2": one-way delay and jitter in ms, loss in percent (each direction); any subset */
export function parseWanSpec (value: string): WanLink {
  const opts: WanLinkOptions = {}
  for (const part of value.split(',').map((p) => p.trim()).filter((p) => p !== '')) {
    const [key, num, ...rest] = part.split('=')
    const field = WAN_SPEC_KEYS[key as keyof typeof WAN_SPEC_KEYS]
    if (field === undefined || num === undefined || rest.length > 0 || num.trim() === '' || !Number.isFinite(Number(num))) {
      throw new InvalidArgumentError(`"${part}": expected delay=MS, jitter=MS or loss=PERCENT, separated by commas`)
    }
    opts[field] = Number(num)
  }
  try {
    return parseWanLink(opts, 'the WAN link')
  } catch (err) {
    throw new InvalidArgumentError(err instanceof Error ? err.message : String(err))
  }
}

interface LabShapeOptions {
  a: NatFlavour
  b: NatFlavour
  sameNat?: boolean
  aCarrier?: NatedFlavour
  bCarrier?: NatedFlavour
  wan?: WanLink
  wanA?: WanLink
  wanB?: WanLink
}

/** The lab flavour flags shared by `lab run` and `lab up`. */
function addShapeOptions (cmd: Command): Command {
  return cmd
    .option('--same-nat', 'two hosts behind one NAT: B sits on A\'s LAN, behind A\'s NAT (--b must name the same flavour)')
    .option('--a-carrier <flavour>', 'double NAT: put A\'s NAT behind a carrier-grade NAT of this flavour', natedFlavourArg)
    .option('--b-carrier <flavour>', 'double NAT: put B\'s NAT behind a carrier-grade NAT of this flavour', natedFlavourArg)
    .option('--wan <spec>', 'WAN emulator on A\'s and B\'s internet links: "delay=MS,jitter=MS,loss=PERCENT" (one-way, each direction)', parseWanSpec)
    .option('--wan-a <spec>', 'WAN emulator on A\'s link only (overrides --wan there)', parseWanSpec)
    .option('--wan-b <spec>', 'WAN emulator on B\'s link only (overrides --wan there; not with --same-nat: B uses A\'s link)', parseWanSpec)
}

function shapeOf (o: LabShapeOptions): Pick<TopologyOptions, 'sameNatAs' | 'carrierNat' | 'wan'> {
  const wanA = o.wanA ?? o.wan
  const wanB = o.sameNat === true ? o.wanB : o.wanB ?? o.wan
  const carrierNat: Record<string, NatedFlavour> = {
    ...(o.aCarrier !== undefined ? { A: o.aCarrier } : {}),
    ...(o.bCarrier !== undefined ? { B: o.bCarrier } : {})
  }
  const wan: Record<string, WanLinkOptions> = { ...(wanA !== undefined ? { A: wanA } : {}), ...(wanB !== undefined ? { B: wanB } : {}) }
  return {
    ...(o.sameNat === true ? { sameNatAs: { B: 'A' } } : {}),
    ...(Object.keys(carrierNat).length > 0 ? { carrierNat } : {}),
    ...(Object.keys(wan).length > 0 ? { wan } : {})
  }
}

function positiveInt (name: string, max: number) {
  return (value: string): number => {
    const n = Number(value)
    if (!Number.isInteger(n) || n < 1 || n > max) throw new InvalidArgumentError(`${name} must be an integer 1..${max}`)
    return n
  }
}

function prefixArg (value: string): string {
  if (!value.startsWith(REQUIRED_PREFIX) || !/^[A-Za-z0-9_-]{3,24}$/.test(value)) {
    throw new InvalidArgumentError(`the prefix must start with "${REQUIRED_PREFIX}" and use at most 24 of [A-Za-z0-9_-]`)
  }
  return value
}

const out = (line: string): void => { process.stdout.write(line + '\n') }
const fmtMs = (ms: number | null | undefined): string => ms == null ? '-' : `${Math.round(ms)} ms`

export function trialLine (r: TrialResult, total: number): string {
  const width = String(total).length
  const parts = [
    `trial ${String(r.trial).padStart(width)}/${total}`,
    `${r.a} -> ${r.b}`,
    `relay ${r.relayOk ? 'ok' : 'FAIL'}`,
    `direct ${r.directOk ? 'ok' : 'no'}`,
    `path ${r.path}`,
    `relay->direct ${fmtMs(r.msRelayToDirect)}`,
    `gateway via ${r.gatewayTransport.a ?? '?'}/${r.gatewayTransport.b ?? '?'}`,
    `punch ${r.holePunch.outcome}${r.holePunch.reason !== undefined && r.holePunch.outcome !== 'success' ? ` (${r.holePunch.reason})` : ''}`,
    `${(r.durationMs / 1000).toFixed(1)} s`
  ]
  const line = parts.join('  ')
  return r.error === undefined ? line : `${line}\n  error: ${r.error.replace(/\n/g, '\n    ')}`
}

export function summaryLine (s: TrialSummary): string {
  return `total ${s.a} -> ${s.b}: ${s.trials} trial(s), relay ${s.relayOk}/${s.trials}, direct ${s.directOk}/${s.trials}, ` +
    `relay->direct median ${fmtMs(s.medianMsRelayToDirect)}, p95 ${fmtMs(s.p95MsRelayToDirect)}`
}

/** Turns SIGINT/SIGTERM into an abort, so the lab is torn down before the process ends. */
function abortOnSignal (): { signal: AbortSignal, dispose: () => void } {
  const controller = new AbortController()
  const onSignal = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(130)
    process.stderr.write(`natmesh lab: ${sig} received, tearing the lab down (again to exit at once)\n`)
    controller.abort()
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
  return {
    signal: controller.signal,
    dispose: () => { process.off('SIGINT', onSignal); process.off('SIGTERM', onSignal) }
  }
}

function runCommand (): Command {
  return addShapeOptions(new Command('run'))
    .description('run hole-punch trials between two peers behind NATs of the given flavours')
    .requiredOption('--a <flavour>', `NAT flavour of peer A, the one that dials (${FLAVOURS})`, flavourArg)
    .requiredOption('--b <flavour>', `NAT flavour of peer B, the one dialled (${FLAVOURS})`, flavourArg)
    .option('--trials <n>', 'number of trials, each with fresh peers and flushed NAT tables', positiveInt('--trials', 10_000), 1)
    .option('--json', 'one JSON object per trial, then the summary object last')
    .option('--keep', 'leave the namespaces and the work directory behind for inspection (remove with `natmesh lab down --prefix <the printed prefix>`)')
    .option('--hole-punch-timeout-ms <ms>', 'peers\' hole-punch attempt timeout (default: 5000, or 500 where a punch cannot work)', positiveInt('--hole-punch-timeout-ms', 600_000))
    .option('--hole-punch-retries <n>', 'peers\' hole-punch attempts (default: 3, or 1 where a punch cannot work)', positiveInt('--hole-punch-retries', 100))
    .option('--trial-timeout-ms <ms>', 'stop a trial that has not ended after this long', positiveInt('--trial-timeout-ms', 3_600_000))
    .option('--prefix <prefix>', 'namespace prefix (default: nm-<random>-)', prefixArg)
    .action(async (options: LabShapeOptions & {
      trials: number
      json?: boolean
      keep?: boolean
      holePunchTimeoutMs?: number
      holePunchRetries?: number
      trialTimeoutMs?: number
      prefix?: string
    }) => {
      assertRoot()
      const json = options.json === true
      const peerArgs = recommendedPeerArgs(options.a, options.b)
      if (options.holePunchTimeoutMs !== undefined) peerArgs.push('--hole-punch-timeout-ms', String(options.holePunchTimeoutMs))
      if (options.holePunchRetries !== undefined) peerArgs.push('--hole-punch-retries', String(options.holePunchRetries))
      const { signal, dispose } = abortOnSignal()
      try {
        const run = await runTrials({
          a: options.a,
          b: options.b,
          trials: options.trials,
          peerArgs,
          topology: shapeOf(options),
          ...(options.trialTimeoutMs !== undefined ? { trialTimeoutMs: options.trialTimeoutMs } : {}),
          ...(options.prefix !== undefined ? { prefix: options.prefix } : {}),
          keep: options.keep === true,
          signal,
          log: json ? undefined : (line) => { process.stderr.write(`${line}\n`) },
          onTrial: (r) => { out(json ? JSON.stringify(r) : trialLine(r, options.trials)) }
        })
        if (signal.aborted) process.exitCode = 130
        if (run.kept !== undefined) {
          process.stderr.write(`kept namespaces ${run.kept.namespaces.join(' ')} and ${run.kept.dir}; ` +
            `remove with: natmesh lab down --prefix ${run.prefix}\n`)
        }
        out(json ? JSON.stringify(run.summary) : summaryLine(run.summary))
      } finally {
        dispose()
      }
    })
}

function upCommand (): Command {
  return addShapeOptions(new Command('up'))
    .description('build a lab (a gateway namespace and two peers behind NATs) and print how to use it')
    .requiredOption('--a <flavour>', `NAT flavour of peer slot A (${FLAVOURS})`, flavourArg)
    .requiredOption('--b <flavour>', `NAT flavour of peer slot B (${FLAVOURS})`, flavourArg)
    .option('--prefix <prefix>', 'namespace prefix', prefixArg, 'nm-lab-')
    .action(async (options: LabShapeOptions & { prefix: string }) => {
      assertRoot()
      const topo = await createTopology({ ...shapeOf(options), prefix: options.prefix, gateways: 1, peers: { A: options.a, B: options.b } })
      const gw = topo.gateway(0)
      out(`lab ${options.prefix} is up (namespaces: ${topo.namespaces().sort().join(' ')})`)
      out(`  gateway   ${gw.padEnd(22)} ${topo.gatewayIp(0)}`)
      for (const slot of topo.slots) out(`  peer ${slot}    ${topo.peer(slot).padEnd(22)} ${topo.peerIp(slot)}${slotDetails(topo, slot)}`)
      // the same Node and CLI that run this command
      const cli = `${process.execPath} ${process.argv[1] ?? 'dist/cli/index.js'}`
      out('')
      out('run commands in it with `ip netns exec <namespace> <command>`, e.g.:')
      out(`  ip netns exec ${gw} ${cli} gateway --host 0.0.0.0 --udp-port 4001 --tcp-port 4001 --announce ${topo.gatewayIp(0)} --api 127.0.0.1:8080 --identity-file /tmp/${options.prefix}gw.key --json`)
      out(`  ip netns exec ${topo.peer('B')} ${cli} peer --gateway /ip4/${topo.gatewayIp(0)}/udp/4001/udx/p2p/<GATEWAY_ID> --gateway /ip4/${topo.gatewayIp(0)}/tcp/4001/p2p/<GATEWAY_ID> --gateway-dial-timeout-ms 1500 --identity-file /tmp/${options.prefix}B.key --json`)
      out(`  ip netns exec ${topo.peer('A')} ${cli} peer --gateway ... (as above) --identity-file /tmp/${options.prefix}A.key --json --dial <B_PEER_ID>`)
      const natted = topo.slots.find((slot) => isNated(topo.flavourOf(slot)))
      if (natted !== undefined) out(`  ip netns exec ${topo.nat(natted)} conntrack -L -p udp      (the NAT's current mappings)`)
      out(`  ip netns exec ${topo.peer('A')} tcpdump -ni any udp`)
      out('')
      out(`tear it down with: natmesh lab down --prefix ${options.prefix}`)
    })
}

function slotDetails (topo: Topology, slot: string): string {
  const flavour = topo.flavourOf(slot)
  let line = isNated(flavour) ? `, behind ${topo.nat(slot)} (${flavour} NAT, WAN ${topo.natWanIp(slot)})` : ' (public, no NAT)'
  const carrier = tryName(() => topo.carrierNat(slot))
  if (carrier !== undefined) line += `, itself behind carrier NAT ${carrier}`
  const link = topo.wanLinkOf(slot)
  if (link !== undefined) {
    line += `; WAN emulator ${topo.wanLink(slot)}: delay ${link.delayMs} ms ± ${link.jitterMs} ms, loss ${link.lossPercent} % each way`
  }
  return line
}

function tryName (f: () => string): string | undefined {
  try { return f() } catch { return undefined }
}

function downCommand (): Command {
  return new Command('down')
    .description('remove the namespaces of one lab (and kill what runs in them): what `lab up`, `lab run --keep` or a crashed run left')
    .requiredOption('--prefix <prefix>', 'the lab\'s prefix, as `lab up` or `lab run --keep` printed it; other labs\' namespaces are left alone', prefixArg)
    .action(async (options: { prefix: string }) => {
      assertRoot()
      const removed = await removeLab(options.prefix)
      out(removed.length === 0 ? `no lab namespaces with prefix "${options.prefix}"` : `removed ${removed.length} namespace(s): ${removed.sort().join(' ')}`)
    })
}

function verdictCommand (): Command {
  return new Command('verdict')
    .description('judge one trial from two peers\' event files (`natmesh peer --json` output, e.g. the Docker lab\'s containers): ' +
      'prints the trial and summary JSON like `lab run --json`; exit 0 when the path is the one the flavours allow (direct where a punch can work)')
    .requiredOption('--a <flavour>', `NAT flavour of peer A, the one that dials (${FLAVOURS})`, flavourArg)
    .requiredOption('--b <flavour>', `NAT flavour of peer B, the one dialled (${FLAVOURS})`, flavourArg)
    .requiredOption('--a-events <file>', 'where peer A\'s JSON events are written')
    .requiredOption('--b-events <file>', 'where peer B\'s JSON events are written')
    .option('--timeout-ms <ms>', 'give up on a verdict after this long (default: every punch attempt\'s time and 10 s)', positiveInt('--timeout-ms', 3_600_000))
    .action(async (options: { a: NatFlavour, b: NatFlavour, aEvents: string, bEvents: string, timeoutMs?: number }) => {
      // stopped (docker compose ending the run, ^C): judge what the peers wrote so far rather than print nothing
      const controller = new AbortController()
      const stop = (): void => { controller.abort() }
      process.once('SIGTERM', stop)
      process.once('SIGINT', stop)
      process.stderr.write(`verdict: judging A (${options.a}, ${options.aEvents}) -> B (${options.b}, ${options.bEvents})\n`)
      const run = await judgeEventFiles({
        signal: controller.signal,
        a: options.a,
        b: options.b,
        aEvents: options.aEvents,
        bEvents: options.bEvents,
        ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {})
      })
      out(JSON.stringify(run.result))
      out(JSON.stringify(run.summary))
      process.stderr.write(`verdict: ${options.a} -> ${options.b} went ${run.result.path}, expected ${run.expected}: ${run.ok ? 'ok' : 'FAIL'}\n`)
      if (!run.ok) process.exitCode = 1
    })
}

export function labCommand (): Command {
  return new Command('lab')
    .description('NAT lab: network namespaces (run, up, down: need root), and the Docker lab\'s verdict')
    .addCommand(runCommand())
    .addCommand(upCommand())
    .addCommand(downCommand())
    .addCommand(verdictCommand())
}
