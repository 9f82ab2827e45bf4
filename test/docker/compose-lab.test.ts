/**
 * The Docker lab for real, as a tester runs it (README, "The Docker lab"): a Docker engine of the test's own, the
 * base image made from Debian packages (debootstrap; no image registry), the images built from the staged
 * context, then `docker-compose up --exit-code-from lab` for one cone-cone and one cone-symmetric trial, judged
 * by the lab service. Needs root and Debian's docker.io, docker-compose and debootstrap: without them this fails,
 * it does not skip.
 */
import { createHash } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stageContexts, REPO } from '../../docker/stage-context.ts'
import type { TrialResult, TrialSummary } from '../../src/lab/index.js'
import { DockerEngine, runCommand, type RunResult } from './engine.ts'

const COMPOSE_FILE = join(REPO, 'docker-compose.nat-test.yml')
const MAKE_BASE = join(REPO, 'docker/make-base-image.sh')
/**
 * The base image's root filesystem, kept between runs on the same machine (debootstrap takes about a minute);
 * named after the script that makes it, so a changed recipe never reuses an old tree.
 */
const BASE_CACHE = `/var/cache/natmesh-docker-base-${createHash('sha256').update(readFileSync(MAKE_BASE)).digest('hex').slice(0, 12)}.tar`
const PROJECT = `nmlab${process.pid % 100_000}`

let engine: DockerEngine | undefined

function docker (): DockerEngine {
  if (engine === undefined) throw new Error('no Docker engine: see the beforeAll error')
  return engine
}

async function compose (args: readonly string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 180_000): Promise<RunResult> {
  return await runCommand('docker-compose', ['--no-ansi', '-f', COMPOSE_FILE, '-p', PROJECT, ...args], docker().env(env), timeoutMs)
}

async function must (what: string, result: Promise<RunResult>): Promise<RunResult> {
  const r = await result
  if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`)
  return r
}

/** the two JSON lines the lab service printed last: the trial, then the summary (as `natmesh lab run --json`) */
async function verdict (): Promise<{ result: TrialResult, summary: TrialSummary }> {
  const logs = await must('docker-compose logs lab', compose(['logs', '--no-color', 'lab']))
  const json = logs.stdout.split('\n').map((line) => line.replace(/^[^|]*\|\s?/, '')).filter((line) => line.startsWith('{'))
  expect(json.length, logs.stdout).toBeGreaterThanOrEqual(2)
  return { result: JSON.parse(json.at(-2) as string) as TrialResult, summary: JSON.parse(json.at(-1) as string) as TrialSummary }
}

async function containerId (service: string): Promise<string> {
  return (await must(`docker-compose ps ${service}`, compose(['ps', '-q', service]))).stdout.trim()
}

async function eventsOf (service: string): Promise<Array<Record<string, unknown>>> {
  const logs = await must(`docker-compose logs ${service}`, compose(['logs', '--no-color', service]))
  return logs.stdout.split('\n').map((line) => line.replace(/^[^|]*\|\s?/, '')).filter((line) => line.startsWith('{"time"'))
    .map((line) => JSON.parse(line) as Record<string, unknown>)
}

describe('Docker lab (docker-compose.nat-test.yml)', () => {
  beforeAll(async () => {
    for (const [tool, pkg] of [['dockerd', 'docker.io'], ['docker', 'docker.io'], ['docker-compose', 'docker-compose'], ['debootstrap', 'debootstrap']]) {
      const found = await runCommand('sh', ['-c', `command -v ${tool}`], process.env, 5000)
      if (found.code !== 0) throw new Error(`${tool} is missing: apt-get install ${pkg} (the Docker lab test needs docker.io, docker-compose, debootstrap)`)
    }
    if (!existsSync(join(REPO, 'dist/cli/index.js'))) throw new Error('dist/ is missing: build first (tsc -p tsconfig.json)')
    engine = await DockerEngine.start()
    await must('docker/make-base-image.sh', runCommand(MAKE_BASE, ['--cache', BASE_CACHE], docker().env(), 300_000))
    stageContexts()
    await must('docker-compose build', compose(['build']))
  }, 420_000)

  afterAll(async () => {
    if (engine === undefined) return
    try {
      await compose(['down', '--volumes', '--timeout', '2'])
    } finally {
      await engine.stop()
    }
  }, 120_000)

  it('cone -> cone: the lab service exits 0 with a direct verdict', async () => {
    const up = await compose(['up', '--exit-code-from', 'lab'], { NAT1_FLAVOUR: 'cone', NAT2_FLAVOUR: 'cone' })
    expect(up.code, `${up.stdout.slice(-4000)}\n${up.stderr.slice(-2000)}`).toBe(0)
    const { result, summary } = await verdict()
    expect(result).toMatchObject({ a: 'cone', b: 'cone', relayOk: true, directOk: true, path: 'direct', holePunch: { outcome: 'success', strategy: 'dcutr' } })
    expect(result.error).toBeUndefined()
    expect(result.msRelayToDirect).toBeGreaterThan(0)
    expect(summary).toMatchObject({ a: 'cone', b: 'cone', trials: 1, relayOk: 1, directOk: 1, medianMsRelayToDirect: result.msRelayToDirect })
  }, 180_000)

  it('NAT2_FLAVOUR=symmetric recreates peer2 (a fresh NAT verdict) and the birthday punch goes direct', async () => {
    const peer2Before = await containerId('peer2')
    const up = await compose(['up', '--exit-code-from', 'lab'], { NAT1_FLAVOUR: 'cone', NAT2_FLAVOUR: 'symmetric' })
    expect(up.code, `${up.stdout.slice(-4000)}\n${up.stderr.slice(-2000)}`).toBe(0)
    expect(await containerId('peer2')).not.toBe(peer2Before)
    const natTypes = (await eventsOf('peer2')).filter((e) => e.event === 'nat-type').map((e) => e.natType)
    expect(natTypes.length).toBeGreaterThan(0)
    expect(new Set(natTypes)).toEqual(new Set(['symmetric']))
    const { result, summary } = await verdict()
    expect(result).toMatchObject({ a: 'cone', b: 'symmetric', relayOk: true, directOk: true, path: 'direct', holePunch: { outcome: 'success', strategy: 'birthday' } })
    expect(summary).toMatchObject({ a: 'cone', b: 'symmetric', trials: 1, directOk: 1 })
  }, 180_000)

  it('NAT1_DELAY_MS without netem: router1 exits 1 saying so, nothing behind it starts, up fails', async () => {
    const netem = await runCommand('docker', ['run', '--rm', '--network', 'none', '--cap-add', 'NET_ADMIN', '--entrypoint', 'tc',
      'natmesh-lab/router', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', '1ms'], docker().env(), 60_000)
    // this lab's kernel has no netem; on one that has it, the same settings must simply work
    const before = Date.now()
    const up = await compose(['up', '--exit-code-from', 'lab'], { NAT1_FLAVOUR: 'cone', NAT2_FLAVOUR: 'cone', NAT1_DELAY_MS: '20' })
    if (netem.code === 0) {
      expect(up.code, up.stdout.slice(-4000)).toBe(0)
      expect((await verdict()).result.path).toBe('direct')
      return
    }
    expect(up.code).not.toBe(0)
    expect(`${up.stdout}${up.stderr}`).toMatch(/unhealthy|exited/)
    const router = await must('docker-compose logs router1', compose(['logs', '--no-color', 'router1']))
    expect(router.stdout).toContain('router: cannot apply DELAY_MS=20 JITTER_MS=0 LOSS_PCT=0: tc netem failed')
    // up gives up once router1 is unhealthy; router1 itself exits two failed checks later (see its entrypoint)
    const exited = await must('docker wait router1', runCommand('docker', ['wait', await containerId('router1')], docker().env(), 60_000))
    expect(exited.stdout.trim()).toBe('1')
    // the gateway and router2 (healthy, so set up) have no way out of the lab: docker's default route via its host
    // bridge is gone (the peers point theirs at their router)
    const routes = async (service: string): Promise<string> =>
      (await must(`ip route in ${service}`, runCommand('docker', ['exec', await containerId(service), 'ip', '-4', 'route', 'show', 'default'], docker().env(), 30_000))).stdout.trim()
    expect(await routes('gateway')).toBe('')
    expect(await routes('router2')).toBe('')
    // neither the peer behind it nor the lab ran this time: no verdict for a lab that is not the one asked for
    for (const service of ['peer1', 'lab']) {
      const id = await containerId(service)
      expect(id, service).not.toBe('')
      const state = await must('docker inspect', runCommand('docker', ['inspect', '--format', '{{.State.Running}} {{.State.StartedAt}}', id], docker().env(), 30_000))
      const [running, startedAt] = state.stdout.trim().split(' ')
      expect(running, service).toBe('false')
      expect(Date.parse(startedAt as string), service).toBeLessThan(before)
    }
  }, 180_000)
})
