/**
 * The lab's WAN emulator (lab/wan-link.py on a slot's internet link): a UDP echo through it shows the configured
 * delay, jitter that never reorders, and the configured loss rate. Needs root and python3.
 */
import { execFile, execFileSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTopology, type Topology } from '../../src/lab/index.js'
import { labNamespaces } from '../helpers/lab-runs.js'

const isRoot = process.getuid?.() === 0
const PREFIX = `nm-wl${process.pid % 100000}-`
const ECHO = fileURLToPath(new URL('../helpers/net-probe.mjs', import.meta.url))
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

describe.skipIf(!isRoot)('natmesh lab up with lab flavours and the WAN emulator', () => {
  const CLI = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url))
  const prefix = `nm-wc${process.pid % 100000}-`
  const natmesh = async (args: string[]): Promise<{ code: number | null, stdout: string, stderr: string }> =>
    await new Promise((resolve) => {
      execFile(process.execPath, [CLI, ...args], { timeout: 60_000 }, (err, stdout, stderr) => {
        resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr })
      })
    })

  afterAll(async () => {
    await natmesh(['lab', 'down', '--prefix', prefix])
  })

  it('builds same-NAT peers behind a carrier NAT with a delayed, lossy link, exits, and lab down removes it all', async () => {
    const up = await natmesh(['lab', 'up', '--a', 'cone', '--b', 'cone', '--same-nat', '--a-carrier', 'symmetric', '--wan', 'delay=30,jitter=3,loss=1', '--prefix', prefix])
    expect(up.code, up.stderr).toBe(0)
    expect(up.stdout).toMatch(new RegExp(`peer B +${prefix}peerB +192\\.168\\.1\\.3, behind ${prefix}natA \\(cone NAT, WAN 11\\.0\\.113\\.21\\), ` +
      `itself behind carrier NAT ${prefix}cgnA; WAN emulator ${prefix}wanA: delay 30 ms ± 3 ms, loss 1 % each way`))
    expect(labNamespaces(prefix).sort()).toEqual(['cgnA', 'gw0', 'natA', 'peerA', 'peerB', 'pub', 'wanA'].map((n) => `${prefix}${n}`))
    // the emulator outlives the command that started it
    const pids = execFileSync('ip', ['netns', 'pids', `${prefix}wanA`], { encoding: 'utf8' }).trim().split('\n').filter((p) => p !== '')
    expect(pids.length).toBe(1)
    const down = await natmesh(['lab', 'down', '--prefix', prefix])
    expect(down.stdout).toContain('removed 7 namespace(s)')
    expect(labNamespaces(prefix)).toEqual([])
    // killed with its namespace: gone, or dead and waiting for its parent to reap it
    const status = existsSync(`/proc/${pids[0]}/status`) ? readFileSync(`/proc/${pids[0]}/status`, 'utf8') : 'State: gone'
    expect(status).toMatch(/State:\s+(gone|Z|X)/)
  }, 90_000)

  it('refuses a bad WAN spec and a same-NAT pair of two flavours, and builds nothing', async () => {
    const badSpec = await natmesh(['lab', 'up', '--a', 'cone', '--b', 'cone', '--wan', 'delay=fast', '--prefix', prefix])
    expect(badSpec.code).not.toBe(0)
    expect(badSpec.stderr).toContain('"delay=fast": expected delay=MS, jitter=MS or loss=PERCENT')
    const mixed = await natmesh(['lab', 'up', '--a', 'cone', '--b', 'symmetric', '--same-nat', '--prefix', prefix])
    expect(mixed.code).not.toBe(0)
    expect(mixed.stderr).toContain('shares A\'s cone NAT, so its flavour must be cone too')
    expect(labNamespaces(prefix)).toEqual([])
  }, 90_000)
})
