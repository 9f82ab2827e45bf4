/**
 * The lab's WAN emulator (lab/wan-link.py on a slot's internet link): a UDP echo through it shows the configured
 * delay, jitter that never reorders, and the configured loss rate. Needs root and python3.
 */
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTopology, type Topology } from '../../src/lab/index.js'
import { labNamespaces } from '../helpers/lab-runs.js'

const isRoot = process.getuid?.() === 0
const PREFIX = `nm-wl${process.pid % 100000}-`
const ECHO = fileURLToPath(new URL('../../bench/lib/net-probe.mjs', import.meta.url))
const DELAY = { delayMs: 40, jitterMs: 10 }
const LOSS = { lossPercent: 10, seed: 12 }
const LOSS_PROBES = 1000

interface Probed { sent: number, rttsMs: number[], arrivals: number[] }

describe.skipIf(!isRoot)('WAN emulator', () => {
  let topo: Topology
  let echoPort = 0

  beforeAll(async () => {
    topo = await createTopology({
      prefix: PREFIX,
      peers: { A: 'cone', B: 'public', C: 'cone' },
      wan: { A: { ...DELAY, seed: 3 }, B: LOSS }
    })
    const echo = topo.spawnIn(topo.gateway(0), process.execPath, [ECHO, 'serve'], { stdio: ['pipe', 'pipe', 'inherit'] })
    echoPort = await new Promise<number>((resolve, reject) => {
      echo.stdout?.setEncoding('utf8').once('data', (line: string) => { resolve((JSON.parse(line) as { port: number }).port) })
      echo.once('exit', (code) => { reject(new Error(`udp echo exited (${code})`)) })
    })
  }, 60_000)

  afterAll(async () => {
    await topo?.down()
    expect(labNamespaces(PREFIX)).toEqual([])
  })

  async function probe (slot: string, count: number, intervalMs: number): Promise<Probed> {
    const r = await topo.exec(topo.peer(slot), [process.execPath, ECHO, 'probe', topo.gatewayIp(0), String(echoPort), String(count), String(intervalMs)],
      { timeoutMs: 60_000 })
    return JSON.parse(r.stdout) as Probed
  }

  it('sits on the slot\'s internet link in a namespace of its own', () => {
    expect(topo.wanLinkOf('A')).toEqual({ ...DELAY, lossPercent: 0, seed: 3 })
    expect(topo.namespaces()).toContain(topo.wanLink('A'))
    expect(topo.wanLinkOf('C')).toBeUndefined()
    expect(() => topo.wanLink('C')).toThrow(/no WAN emulator/)
  })

  it('delays each direction by the one-way delay ± jitter, and never reorders', async () => {
    const { sent, rttsMs, arrivals } = await probe('A', 200, 5)
    // the path crosses A's link twice; nothing else on it delays
    const min = 2 * (DELAY.delayMs - DELAY.jitterMs)
    const max = 2 * (DELAY.delayMs + DELAY.jitterMs)
    expect(rttsMs.length).toBe(sent)
    expect(Math.min(...rttsMs)).toBeGreaterThanOrEqual(min)
    const sorted = [...rttsMs].sort((x, y) => x - y)
    const median = sorted[sorted.length >> 1] as number
    expect(median).toBeGreaterThanOrEqual(2 * DELAY.delayMs - DELAY.jitterMs)
    // the upper bound leaves room for a loaded machine's scheduling, the emulator's and the echo's
    expect(median).toBeLessThanOrEqual(max + 25)
    // jitter spreads the RTTs (at 5 ms spacing, a reordering link would also swap answers)
    expect(sorted.at(-1)! - sorted[0]!).toBeGreaterThan(DELAY.jitterMs)
    expect(arrivals).toEqual([...arrivals].sort((x, y) => x - y))
  }, 60_000)

  it('drops about the configured share of packets in each direction', async () => {
    const { sent, rttsMs } = await probe('B', LOSS_PROBES, 2)
    // an echo comes back when neither crossing dropped it: binomial with p = (1 - loss)^2; 5 standard deviations
    const p = (1 - LOSS.lossPercent / 100) ** 2
    const sd = Math.sqrt(sent * p * (1 - p))
    expect(rttsMs.length).toBeGreaterThanOrEqual(Math.floor(sent * p - 5 * sd))
    expect(rttsMs.length).toBeLessThanOrEqual(Math.ceil(sent * p + 5 * sd))
  }, 60_000)

  it('leaves a link without emulator alone: no loss', async () => {
    const { sent, rttsMs } = await probe('C', 200, 2)
    expect(rttsMs.length).toBe(sent)
  }, 60_000)
})
