import { execFile } from 'node:child_process'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadGatewayConfig, loadPeerConfig } from '../../src/config/index.js'
import { CLI, runCli } from '../helpers/cli.js'

const EXAMPLES = resolve('examples')
/** where the units expect the CLI (npm install -g) and the config files (copied from examples/) */
const INSTALLED_CLI = '/usr/local/bin/natmesh'
const INSTALLED_CONFIG = '/etc/natmesh/'

/** `[Section]` and `Key=Value` lines of a unit file (comments and blank lines skipped) */
function parseUnit (text: string): Map<string, Map<string, string>> {
  const sections = new Map<string, Map<string, string>>()
  let current: Map<string, string> | undefined
  for (const line of text.split('\n').map(l => l.trim())) {
    if (line === '' || line.startsWith('#')) continue
    const section = /^\[(\w+)\]$/.exec(line)
    if (section != null) {
      current = new Map()
      sections.set(section[1] as string, current)
      continue
    }
    const eq = line.indexOf('=')
    if (current == null || eq < 1) throw new Error(`not a unit file line: ${line}`)
    current.set(line.slice(0, eq), line.slice(eq + 1))
  }
  return sections
}

async function systemdAnalyzeVerify (unit: string): Promise<{ code: number, stderr: string }> {
  return new Promise((resolve) => {
    execFile('systemd-analyze', ['verify', unit], (err, _stdout, stderr) => {
      resolve({ code: err == null ? 0 : typeof err.code === 'number' ? err.code : -1, stderr })
    })
  })
}

describe('examples/: config files and systemd units', () => {
  let dir: string
  beforeAll(async () => { dir = await mkdtemp(join(tmpdir(), 'natmesh-examples-')) })
  afterAll(async () => { await rm(dir, { recursive: true, force: true }) })

  it('the gateway and peer config files load through the config loader', async () => {
    const gateway = await loadGatewayConfig({ file: join(EXAMPLES, 'gateway.yaml'), env: {}, flags: {} })
    expect(gateway).toMatchObject({ udpPort: 4001, tcpPort: 4001, announce: ['203.0.113.7'], api: { host: '127.0.0.1', port: 8080 }, identityFile: '/var/lib/natmesh/gateway.key' })
    const peer = await loadPeerConfig({ file: join(EXAMPLES, 'peer.yaml'), env: {}, flags: {} })
    expect(peer).toMatchObject({ mode: 'opportunistic', stations: ['printer'], identityFile: '/var/lib/natmesh/peer.key', controlSocket: '/var/lib/natmesh/peer.sock' })
    expect(peer.gateways).toHaveLength(2)
  })

  for (const role of ['gateway', 'peer'] as const) {
    it(`natmesh-${role}.service runs the CLI with flags it accepts, stops it cleanly in time, and passes systemd-analyze verify`, async () => {
      const file = join(EXAMPLES, 'systemd', `natmesh-${role}.service`)
      const text = await readFile(file, 'utf8')
      const unit = parseUnit(text)
      const service = unit.get('Service')
      expect(service).toBeDefined()
      const [binary, ...args] = (service?.get('ExecStart') ?? '').split(/\s+/)
      expect(binary).toBe(INSTALLED_CLI)
      expect(args.slice(0, 3)).toEqual([role, '--config', `${INSTALLED_CONFIG}${role}.yaml`])
      // the same command, with the example config where the unit expects the installed one
      const localArgs = args.map(arg => arg.startsWith(INSTALLED_CONFIG) ? join(EXAMPLES, arg.slice(INSTALLED_CONFIG.length)) : arg)
      const printed = await runCli([...localArgs, '--print-config', '--json'], { cwd: dir })
      expect(printed.stderr).toBe('')
      expect(printed.code).toBe(0)
      // SIGTERM to the whole unit is what natmesh's clean shutdown is built and tested for (test/cli/shutdown.test.ts)
      expect(service?.get('KillMode')).toBe('control-group')
      expect(service?.get('KillSignal') ?? 'SIGTERM').toBe('SIGTERM')
      const stopSeconds = Number(service?.get('TimeoutStopSec'))
      expect(stopSeconds).toBeGreaterThanOrEqual(10)
      expect(stopSeconds).toBeLessThanOrEqual(90)
      expect(service?.get('WorkingDirectory')).toBe('/var/lib/natmesh')
      expect(unit.get('Install')?.get('WantedBy')).toBe('multi-user.target')

      // systemd's own check, on a copy whose ExecStart is this checkout's CLI (verify wants an executable there)
      const copy = join(dir, `natmesh-${role}.service`)
      await writeFile(copy, text.replace(`ExecStart=${INSTALLED_CLI} `, `ExecStart=${CLI} `))
      expect(await systemdAnalyzeVerify(copy)).toEqual({ code: 0, stderr: '' })
    })
  }
})
