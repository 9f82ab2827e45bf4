import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { parse } from 'yaml'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LabProcess } from '../../src/lab/trial-process.js'
import { BUNDLED_NODE, CLI, LOOPBACK_PEER, runCli, startCli, startCliGateway } from '../helpers/cli.js'
import type { CliGateway } from '../helpers/cli.js'

const GATEWAY_ID = '12D3KooWDpJ7As7BWAwRMfu1VU2WCqNjvq387JEYKDBj4kx6nXTN'
const gw = (ip: string, transport = 'udp/4001/udx'): string => `/ip4/${ip}/${transport}/p2p/${GATEWAY_ID}`

/** a process's stderr as it comes */
function collect (child: ChildProcess): { text: string } {
  const log = { text: '' }
  child.stderr?.setEncoding('utf8').on('data', (chunk: string) => { log.text += chunk })
  return log
}

async function exitCode (child: ChildProcess): Promise<number | null> {
  return new Promise(resolve => { child.once('close', (code) => { resolve(code) }) })
}

let root: string
beforeAll(async () => { root = await mkdtemp(join(tmpdir(), 'natmesh-cli-')) })
afterAll(async () => { await rm(root, { recursive: true, force: true }) })

describe('natmesh --version', () => {
  it('prints package.json\'s version for --version, -V and `version`', async () => {
    const { version } = JSON.parse(await readFile('package.json', 'utf8')) as { version: string }
    for (const args of [['--version'], ['-V'], ['version']]) {
      const result = await runCli(args, { cwd: root })
      expect(result).toMatchObject({ code: 0, stdout: `${version}\n` })
    }
  })
})

describe('list flags: comma-separated, repeated, or both, one rule everywhere', () => {
  it('peer --gateway, --stun-ports and --station', async () => {
    const result = await runCli(['peer', '--gateway', `${gw('192.0.2.1')},${gw('192.0.2.1', 'tcp/4001')}`, '--gateway', gw('192.0.2.2'),
      '--stun-ports', '3478,3479', '--station', 'a,b', '--station', 'c', '--print-config', '--json'], { cwd: root })
    expect(result.code).toBe(0)
    const config = JSON.parse(result.stdout)
    expect(config.gateways).toEqual([gw('192.0.2.1'), gw('192.0.2.1', 'tcp/4001'), gw('192.0.2.2')])
    expect(config.natDetection.stunPorts).toEqual([3478, 3479])
    expect(config.stations).toEqual(['a', 'b', 'c'])
  })

  it('gateway --announce and --allowlist', async () => {
    const result = await runCli(['gateway', '--announce', '198.51.100.1,198.51.100.2', '--announce', '198.51.100.3', '--allowlist', `${GATEWAY_ID},${GATEWAY_ID}`, '--print-config', '--json'], { cwd: root })
    expect(result.code).toBe(0)
    const config = JSON.parse(result.stdout)
    expect(config.announce).toEqual(['198.51.100.1', '198.51.100.2', '198.51.100.3'])
    expect(config.relay.allowlist).toEqual([GATEWAY_ID, GATEWAY_ID])
  })

  it('a bad item is named, not taken for a whole list', async () => {
    const result = await runCli(['peer', '--gateway', `${gw('192.0.2.1')},nonsense`, '--print-config'], { cwd: root })
    expect(result.code).toBe(2)
    expect(result.stderr).toContain('"nonsense" is not a valid multiaddr')
  })

  it('--print-config prints YAML the config loader takes back', async () => {
    const dir = await mkdtemp(join(root, 'print-'))
    const printed = await runCli(['peer', '--gateway', gw('192.0.2.1'), '--mode', 'relay-only', '--print-config'], { cwd: dir })
    expect(printed.code).toBe(0)
    expect(printed.stdout).toContain('mode: relay-only')
    await writeFile(join(dir, 'peer.yaml'), printed.stdout)
    const again = await runCli(['peer', '--config', 'peer.yaml', '--print-config'], { cwd: dir })
    expect(again.code).toBe(0)
    expect(parse(again.stdout)).toEqual(parse(printed.stdout))
  })
})

describe('commands against a running gateway and peers', () => {
  let gateway: CliGateway
  const daemons: LabProcess[] = []
  let alpha: { dir: string, process: LabProcess, peerId: string }

  async function startPeer (name: string, args: string[] = []): Promise<{ dir: string, process: LabProcess, peerId: string }> {
    const dir = join(root, name)
    await mkdir(dir, { recursive: true })
    // default identity file and control socket: ./.natmesh/peer.key and ./.natmesh/peer.sock in its directory
    const peer = startCli(name, ['peer', '--gateway', gateway.udx, ...LOOPBACK_PEER, '--no-nat-detection', ...args], { cwd: dir })
    daemons.push(peer)
    const started = await peer.waitFor(e => e.event === 'started', 30_000, 'started')
    await peer.waitFor(e => e.event === 'reservation', 30_000, 'reservation')
    return { dir, process: peer, peerId: started.peerId as string }
  }

  beforeAll(async () => {
    gateway = await startCliGateway(root)
    alpha = await startPeer('alpha', ['--station', 'alpha'])
    await alpha.process.waitFor(e => e.event === 'station-published', 30_000, 'station-published')
  })

  afterAll(async () => {
    await Promise.all(daemons.map(async d => { await d.stop() }))
    await gateway?.process.stop()
  })

  it('peer --dial exits 0 once it reached the peer, and prints readable values', async () => {
    const dir = join(root, 'dialer')
    await mkdir(dir, { recursive: true })
    const result = await runCli(['peer', '--gateway', gateway.udx, ...LOOPBACK_PEER.filter(f => f !== '--json'), '--no-nat-detection', '--dial', alpha.peerId], { cwd: dir, timeoutMs: 60_000 })
    expect(result.code).toBe(0)
    expect(result.stdout).toMatch(new RegExp(`dial-result target=${alpha.peerId} reached=true peer=${alpha.peerId} path=(relay|direct) rttMs=\\d+(\\.\\d{1,2})?\\n`))
    const pings = result.stdout.split('\n').filter(line => / ping /.test(line))
    expect(pings.length).toBeGreaterThan(0)
    for (const line of pings) expect(line).toMatch(/ rttMs=\d+(\.\d{1,2})?$/)
    expect(result.stdout).not.toContain('[object Object]')
    expect(result.stdout).toContain('stopped clean=true')
  })

  it('peer --dial exits 1 when the peer cannot be reached', async () => {
    const dir = join(root, 'dialer-nobody')
    await mkdir(dir, { recursive: true })
    const result = await runCli(['peer', '--gateway', gateway.udx, ...LOOPBACK_PEER, '--no-nat-detection', '--dial', 'station:nobody-here'], { cwd: dir, timeoutMs: 60_000 })
    expect(result.code).toBe(1)
    const events = result.stdout.trim().split('\n').map(line => JSON.parse(line))
    expect(events).toContainEqual(expect.objectContaining({ event: 'dial-result', target: 'station:nobody-here', reached: false }))
  })

  it('status shows the running peer of this directory over its control socket (mode 0600)', async () => {
    expect((await stat(join(alpha.dir, '.natmesh', 'peer.sock'))).mode & 0o777).toBe(0o600)
    const json = await runCli(['status', '--json'], { cwd: alpha.dir })
    expect(json.code).toBe(0)
    const { status, peers, sessions } = JSON.parse(json.stdout)
    expect(status).toMatchObject({ peerId: alpha.peerId, mode: 'opportunistic', gateways: [{ gateway: gateway.peerId, transport: 'udx' }] })
    expect(Array.isArray(peers) && Array.isArray(sessions)).toBe(true)
    const text = await runCli(['status'], { cwd: alpha.dir })
    expect(text.code).toBe(0)
    expect(text.stdout).toContain(`peer      ${alpha.peerId} (opportunistic)`)
    expect(text.stdout).toContain(`gateways  ${gateway.peerId} over udx, reservation held`)
  })

  it('status without a running peer says so and exits 1', async () => {
    const result = await runCli(['status'], { cwd: root })
    expect(result.code).toBe(1)
    expect(result.stderr).toContain('no running natmesh peer at ./.natmesh/peer.sock')
  })

  it('ping station:<name> through the local peer: path and RTT per round, exit 0; an unknown peer exits 1', async () => {
    const beta = await startPeer('beta')
    const result = await runCli(['ping', 'station:alpha', '-c', '3', '--interval-ms', '100'], { cwd: beta.dir, timeoutMs: 60_000 })
    expect(result.code).toBe(0)
    const rounds = result.stdout.trim().split('\n')
    expect(rounds).toHaveLength(3)
    for (const round of rounds) expect(round).toMatch(new RegExp(`^pong from ${alpha.peerId} via (relay|direct) in \\d+(\\.\\d{1,2})? ms$`))
    // beta's status now lists alpha with a path and an RTT
    const { peers } = JSON.parse((await runCli(['status', '--json'], { cwd: beta.dir })).stdout)
    expect(peers).toContainEqual(expect.objectContaining({ peer: alpha.peerId, rttMs: expect.any(Number) }))

    const unknown = await runCli(['ping', 'station:nobody-here', '--json'], { cwd: beta.dir, timeoutMs: 60_000 })
    expect(unknown.code).toBe(1)
    expect(JSON.parse(unknown.stdout)).toMatchObject({ round: 1, target: 'station:nobody-here', code: 'STATION_NOT_FOUND', error: expect.stringContaining('not found') })
  })

  it('--no-control-socket serves none; a second peer on the same socket is refused with a clear error', async () => {
    const quiet = await startPeer('quiet', ['--no-control-socket'])
    await expect(stat(join(quiet.dir, '.natmesh', 'peer.sock'))).rejects.toThrow(/ENOENT/)
    const twin = await runCli(['peer', '--gateway', gateway.udx, ...LOOPBACK_PEER, '--no-nat-detection', '--identity-file', 'other.key', '--control-socket', './.natmesh/peer.sock'], { cwd: alpha.dir })
    expect(twin.code).toBe(1)
    expect(twin.stderr).toContain('a running daemon is serving this socket')
  })

  it('cat: both sides\' byte counts add up to the 1,000,000 bytes sent, whatever the paths', async () => {
    const catArgs = ['--gateway', gateway.udx, ...LOOPBACK_PEER.filter(f => f !== '--json'), '--no-nat-detection']
    const listener = spawn(BUNDLED_NODE, [CLI, 'cat', '--listen', ...catArgs], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] })
    const listenerLog = collect(listener)
    let received = 0
    listener.stdout.on('data', (chunk: Buffer) => { received += chunk.byteLength })
    const listenerId = await new Promise<string>((resolve, reject) => {
      listener.stderr.on('data', () => {
        const match = /natmesh cat (\S+) --gateway/.exec(listenerLog.text)
        if (match != null) resolve(match[1] as string)
      })
      listener.once('exit', () => { reject(new Error(`cat --listen exited: ${listenerLog.text}`)) })
    })
    const sender = spawn(BUNDLED_NODE, [CLI, 'cat', listenerId, ...catArgs], { cwd: root, stdio: ['pipe', 'ignore', 'pipe'] })
    const senderLog = collect(sender)
    sender.stdin.end(Buffer.alloc(1_000_000, 7))
    const [senderCode, listenerCode] = await Promise.all([exitCode(sender), exitCode(listener)])
    expect({ senderCode, listenerCode, received }).toEqual({ senderCode: 0, listenerCode: 0, received: 1_000_000 })
    const done = (log: string): { sent: number, received: number, total: number } => {
      const match = /cat done: (\d+) bytes sent, (\d+) received; (\d+) bytes direct, (\d+) via the relay/.exec(log)
      if (match == null) throw new Error(`no "cat done" line in: ${log}`)
      return { sent: Number(match[1]), received: Number(match[2]), total: Number(match[3]) + Number(match[4]) }
    }
    expect(done(senderLog.text)).toEqual({ sent: 1_000_000, received: 0, total: 1_000_000 })
    expect(done(listenerLog.text)).toEqual({ sent: 0, received: 1_000_000, total: 1_000_000 })
  })

  it('lookup and cat in a peer\'s directory do not take its identity; lookup --help shows its own flags only', async () => {
    const fresh = await mkdtemp(join(root, 'lookup-'))
    const found = await runCli(['lookup', 'alpha', '--gateway', gateway.udx, '--json'], { cwd: fresh })
    expect(found.code).toBe(0)
    expect(JSON.parse(found.stdout)).toMatchObject({ name: 'alpha', found: true, peerId: alpha.peerId })
    await expect(stat(join(fresh, '.natmesh'))).rejects.toThrow(/ENOENT/)

    const help = await runCli(['lookup', '--help'], { cwd: fresh })
    expect(help.stdout).toContain('--timeout-ms')
    expect(help.stdout).toContain('--gateway')
    expect(help.stdout).not.toContain('--birthday')
    expect(help.stdout).not.toContain('--mode')

    // cat --listen in alpha's directory announces a peer id of its own
    const cat = startCli('cat', ['cat', '--listen', '--gateway', gateway.udx, ...LOOPBACK_PEER.filter(f => f !== '--json'), '--no-nat-detection'], { cwd: alpha.dir })
    try {
      const announced = await new Promise<string>((resolve, reject) => {
        cat.child.stderr?.on('data', () => {
          const match = /natmesh cat (\S+) --gateway/.exec(cat.stderr.text())
          if (match != null) resolve(match[1] as string)
        })
        cat.child.once('exit', () => { reject(new Error(`cat exited: ${cat.stderr.tail()}`)) })
      })
      expect(announced).not.toBe(alpha.peerId)
    } finally {
      await cat.stop()
    }
  })
})
