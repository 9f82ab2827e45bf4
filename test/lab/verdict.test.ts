/**
 * `natmesh lab verdict`, the Docker lab's judge, as the lab service runs it: the built CLI following two event
 * files that peers append to while it runs (the lines are the shape `natmesh peer --json` prints; the Docker lab
 * test runs it against real containers).
 */
import { spawn } from 'node:child_process'
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { DEFAULT_CLI, type TrialResult, type TrialSummary } from '../../src/lab/index.js'

const A = '12D3KooWEr6uuTMse5kNuKruVooB5EWB7PD8nkiBpt36TesmU9XA'
const B = '12D3KooWMxEWDCeuK93kwNY1icQLRVknxiAMhoF4hmTAc4oxqfpu'
const event = (name: string, fields: Record<string, unknown> = {}): string =>
  JSON.stringify({ time: new Date().toISOString(), event: name, ...fields }) + '\n'

interface Verdict { code: number | null, result: TrialResult, summary: TrialSummary, stderr: string }

const dirs: string[] = []
afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }) })

/** starts the verdict on two files holding B's start and reservation and A's start; `ready`: it follows them */
function judge (a: string, b: string, args: string[] = []): { files: { a: string, b: string }, running: ReturnType<typeof spawn>, ready: Promise<void>, done: Promise<Verdict> } {
  const dir = mkdtempSync(join(tmpdir(), 'natmesh-verdict-'))
  dirs.push(dir)
  const files = { a: join(dir, 'peer1.jsonl'), b: join(dir, 'peer2.jsonl') }
  writeFileSync(files.b, event('started', { peerId: B }) + event('reservation', { relayAddrs: [] }))
  writeFileSync(files.a, event('started', { peerId: A }))
  const running = spawn(process.execPath, [DEFAULT_CLI, 'lab', 'verdict', '--a', a, '--b', b, '--a-events', files.a, '--b-events', files.b, ...args],
    { stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  running.stdout?.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  const ready = new Promise<void>((resolve) => {
    running.stderr?.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
      if (stderr.includes('verdict: judging')) resolve()
    })
  })
  const done = new Promise<Verdict>((resolve) => {
    running.on('close', (code) => {
      const [result, summary] = stdout.trim().split('\n').map((l) => JSON.parse(l) as unknown)
      resolve({ code, result: result as TrialResult, summary: summary as TrialSummary, stderr })
    })
  })
  return { files, running, ready, done }
}

describe('natmesh lab verdict', () => {
  it('follows the files until A pings over the direct path: direct, exit 0', async () => {
    const { files, ready, done } = judge('cone', 'cone')
    await ready
    appendFileSync(files.a, event('gateway-connected', { transport: 'udx' }) + event('ping', { peer: B, path: 'relay', rttMs: 1.234 }))
    appendFileSync(files.b, event('hole-punch', { peer: A, outcome: 'success', attempts: 1, msSinceRelay: 80, strategy: 'dcutr' }))
    appendFileSync(files.a, event('hole-punch', { peer: B, outcome: 'success', attempts: 1, msSinceRelay: 75, strategy: 'dcutr' }))
    appendFileSync(files.a, event('ping', { peer: B, path: 'direct', rttMs: 0.5 }))
    const v = await done
    expect(v.code, v.stderr).toBe(0)
    expect(v.result).toMatchObject({ a: 'cone', b: 'cone', relayOk: true, directOk: true, path: 'direct', msRelayToDirect: 75, relayRttMs: 1.23, gatewayTransport: { a: 'udx', b: null } })
    expect(v.result.error).toBeUndefined()
    expect(v.summary).toEqual({ a: 'cone', b: 'cone', trials: 1, relayOk: 1, directOk: 1, medianMsRelayToDirect: 75, p95MsRelayToDirect: 75 })
    expect(v.stderr).toContain('verdict: cone -> cone went direct, expected direct: ok')
  })

  it('a pair that should go direct but stays on the relay: exit 1', async () => {
    const { files, ready, done } = judge('cone', 'symmetric')
    await ready
    appendFileSync(files.a, event('ping', { peer: B, path: 'relay', rttMs: 2 }))
    appendFileSync(files.b, event('hole-punch', { peer: A, outcome: 'failure', attempts: 3, reason: 'timeout' }))
    appendFileSync(files.a, event('hole-punch', { peer: B, outcome: 'failure', reason: 'timeout' }))
    const v = await done
    expect(v.code).toBe(1)
    expect(v.result).toMatchObject({ path: 'relay', directOk: false, holePunch: { outcome: 'failure', attempts: 3 } })
    expect(v.stderr).toContain('went relay, expected direct: FAIL')
  })

  it('a pair that cannot punch is right on the relay: exit 0', async () => {
    const { files, ready, done } = judge('symmetric', 'symmetric')
    await ready
    appendFileSync(files.a, event('ping', { peer: B, path: 'relay', rttMs: 2 }))
    appendFileSync(files.b, event('hole-punch', { peer: A, outcome: 'skipped', attempts: 0, reason: 'both symmetric' }))
    const v = await done
    expect(v.code, v.stderr).toBe(0)
    expect(v.result).toMatchObject({ path: 'relay', holePunch: { outcome: 'skipped' } })
  })

  it('stopped before a verdict (SIGTERM): prints what it has, with the reason and the last events, exit 1', async () => {
    const { files, running, ready, done } = judge('cone', 'cone')
    await ready
    appendFileSync(files.a, event('ping', { peer: B, path: 'relay', rttMs: 2 }))
    running.kill('SIGTERM')
    const v = await done
    expect(v.code).toBe(1)
    expect(v.result.error).toMatch(/^stopped before a verdict\n--- last events in .*peer1\.jsonl ---\n/)
    expect(v.result.relayOk).toBe(true)
  })

  it('gives up at its timeout when A never gets going', async () => {
    const v = await judge('cone', 'cone', ['--timeout-ms', '300']).done
    expect(v.code).toBe(1)
    expect(v.result.error).toMatch(/^no verdict within 300 ms/)
    expect(v.result.relayOk).toBe(false)
  })
})
