/**
 * ICE mode benchmark, in the namespace NAT lab (needs root, coturn, a built dist/):
 *
 *   ice      cone NAT ↔ cone NAT, one `natmesh gateway --turn`: fresh ice-mode peers per trial; the WebRTC dial's
 *            time (signalling over the relayed connection, ICE with the gateway's STUN, DTLS, SCTP) and the time
 *            from the relayed connection to the WebRTC one
 *   turn     the same between two symmetric NATs: the path goes through the gateway's coturn
 *   dcutr    natmesh's own hole punch (opportunistic mode, UDP overlay) in the same topology: bench/punch.ts's trial
 *   stun     STUN Binding requests per second one gateway process answers (rate limit off; bench/lib/stun-load.ts)
 *
 * Peers are told their NAT type (`--ice-nat-type`) so that no trial waits for NAT type detection, which the lab
 * test covers. Nothing else is sent while ICE runs: the figures are the negotiation alone, like bench:punch's.
 *
 *   node bench/ice.ts [--trials 20] [--turn-trials 10]
 *
 * Last line of stdout: {"bench":"ice","ice":{…},"turn":{…},"dcutr":{…},"stunRequestsPerSecond":…}
 */
import { parseArgs } from 'node:util'
import { runTrials } from '../dist/lab/index.js'
import { positiveInteger } from './lib/args.ts'
import { IceLab } from '../test/helpers/ice-lab.ts'
import { measureGatewayStunRate } from './lib/stun-load.ts'
import { quantile } from '../test/helpers/session-lab.ts'
import type { Ev } from '../test/helpers/session-lab.ts'

const { values: args } = parseArgs({ options: { trials: { type: 'string', default: '20' }, 'turn-trials': { type: 'string', default: '10' } } })
const TRIALS = positiveInteger(args, 'trials')
const TURN_TRIALS = positiveInteger(args, 'turn-trials')

if (process.getuid?.() !== 0) {
  console.error('bench/ice: needs root: the NAT lab creates network namespaces and nftables rules')
  process.exit(1)
}

interface Figures { trials: number, ok: number, candidateTypes: Record<string, number>, medianMs: number | null, p95Ms: number | null, sinceRelayMedianMs: number | null }

function figures (events: Ev[], trials: number): Figures {
  const ok = events.filter(e => e.outcome === 'success')
  const negotiation = ok.map(e => Number(e.negotiationMs))
  const candidateTypes: Record<string, number> = {}
  for (const e of ok) candidateTypes[String(e.candidateType)] = (candidateTypes[String(e.candidateType)] ?? 0) + 1
  return {
    trials,
    ok: ok.length,
    candidateTypes,
    medianMs: quantile(negotiation, 0.5),
    p95Ms: quantile(negotiation, 0.95),
    sinceRelayMedianMs: quantile(ok.map(e => Number(e.msSinceRelay)), 0.5)
  }
}

/** `trials` fresh pairs of ice-mode peers: B answers, A dials it over the relay and then by WebRTC */
async function iceTrials (lab: IceLab, trials: number, natType: string, label: string): Promise<Ev[]> {
  const results: Ev[] = []
  for (let n = 1; n <= trials; n++) {
    await Promise.all([lab.flush('A'), lab.flush('B')])
    const B = lab.iceAgent('B', { role: 'responder', count: 1, seed: n }, `B#${n}`, natType)
    const A = lab.iceAgent('A', { role: 'initiator', count: 1, seed: n, gate: true }, `A#${n}`, natType)
    try {
      const ready = await B.waitFor(e => e.event === 'ready', 20_000, 'ready')
      A.release({ target: ready.peerId })
      const ice = await A.waitFor(e => e.event === 'ice', 40_000, 'ice')
      results.push(ice)
      console.log(`${label} ${n}: ${String(ice.outcome)} ${String(ice.strategy)} ${String(ice.candidateType ?? '-')} negotiation ${String(ice.negotiationMs ?? '-')} ms, ` +
        `${String(ice.msSinceRelay ?? '-')} ms after the relayed connection${ice.reason != null ? ` (${String(ice.reason)})` : ''}`)
    } catch (err) {
      results.push({ event: 'ice', outcome: 'error', reason: (err as Error).message.split('\n')[0], at: Date.now() })
      console.log(`${label} ${n}: error ${(err as Error).message.split('\n')[0] ?? ''}`)
    } finally {
      await Promise.all([A.stop(), B.stop()])
    }
  }
  return results
}

const lab = new IceLab({ prefix: `nm-bice${process.pid % 10000}-`, peers: { A: 'cone', B: 'cone' } })
let ice: Figures
let turn: Figures
try {
  await lab.start()
  ice = figures(await iceTrials(lab, TRIALS, 'port-restricted-cone', 'ice cone↔cone'), TRIALS)
  await Promise.all([lab.topo.setFlavour('A', 'symmetric'), lab.topo.setFlavour('B', 'symmetric')])
  turn = figures(await iceTrials(lab, TURN_TRIALS, 'symmetric', 'ice symmetric↔symmetric'), TURN_TRIALS)
} finally {
  await lab.down()
}

const punch = await runTrials({
  a: 'cone',
  b: 'cone',
  trials: TRIALS,
  onTrial: (t) => { console.log(`dcutr ${t.trial}: ${t.path}, relay->direct ${t.msRelayToDirect ?? '-'} ms${t.error != null ? ` (${t.error})` : ''}`) }
})
const dcutr = { trials: punch.summary.trials, ok: punch.summary.directOk, medianMs: punch.summary.medianMsRelayToDirect, p95Ms: punch.summary.p95MsRelayToDirect }

const stun = await measureGatewayStunRate(['--stun-rate-per-second', '0'], { durationMs: 3000 })

console.log(`ICE cone↔cone: ${ice.ok}/${ice.trials} (${JSON.stringify(ice.candidateTypes)}), negotiation median ${ice.medianMs ?? '-'} ms, p95 ${ice.p95Ms ?? '-'} ms; ` +
  `${ice.sinceRelayMedianMs ?? '-'} ms after the relayed connection (median)`)
console.log(`ICE symmetric↔symmetric: ${turn.ok}/${turn.trials} (${JSON.stringify(turn.candidateTypes)}), negotiation median ${turn.medianMs ?? '-'} ms, p95 ${turn.p95Ms ?? '-'} ms`)
console.log(`DCUtR hole punch cone↔cone: ${dcutr.ok}/${dcutr.trials} direct, relay->direct median ${dcutr.medianMs ?? '-'} ms, p95 ${dcutr.p95Ms ?? '-'} ms`)
console.log(`STUN: ${stun.requestsPerSecond} requests/s answered by one gateway (limit off, one source, ${stun.lost} lost)`)
console.log(JSON.stringify({ bench: 'ice', ice, turn, dcutr, stunRequestsPerSecond: stun.requestsPerSecond }))
process.exit(0)
