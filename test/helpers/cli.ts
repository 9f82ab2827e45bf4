import { execFile, spawn } from 'node:child_process'
import { accessSync, constants } from 'node:fs'
import { join, resolve } from 'node:path'
import { LabProcess } from '../../src/lab/trial-process.js'

/** the CLI as a user starts it (npm's bin), run from dist/ (built by `npm test` before vitest) */
export const CLI = resolve('bin/natmesh.js')

/** the Node this test runs on (npm puts the bundled Node 22 first on PATH) */
export const BUNDLED_NODE = process.execPath

/**
 * The machine's own Node, as a user's shell finds it: the first `node` on PATH outside node_modules. On a machine
 * whose Node is older than 22, bin/natmesh.js runs the bundled Node as its child.
 */
export function systemNode (): string {
  for (const dir of (process.env.PATH ?? '').split(':')) {
    if (dir === '' || dir.includes('node_modules')) continue
    const candidate = join(dir, 'node')
    try {
      accessSync(candidate, constants.X_OK)
      return candidate
    } catch {}
  }
  return BUNDLED_NODE
}

export interface CliOptions {
  cwd: string
  node?: string
  /** own process group, as systemd and `setsid` start a service */
  detached?: boolean
}

/** Starts `natmesh <args>`; its JSON events (with --json) and stderr are collected. */
export function startCli (name: string, args: string[], options: CliOptions): LabProcess {
  const child = spawn(options.node ?? BUNDLED_NODE, [CLI, ...args], { cwd: options.cwd, detached: options.detached ?? false, stdio: ['ignore', 'pipe', 'pipe'] })
  return new LabProcess(name, child)
}

/** Runs `natmesh <args>` to its end. */
export async function runCli (args: string[], options: CliOptions & { timeoutMs?: number }): Promise<{ code: number, stdout: string, stderr: string }> {
  return new Promise((resolve, reject) => {
    execFile(options.node ?? BUNDLED_NODE, [CLI, ...args], { cwd: options.cwd, timeout: options.timeoutMs ?? 30_000 }, (err, stdout, stderr) => {
      if (err != null && typeof err.code !== 'number') reject(new Error(`natmesh ${args.join(' ')}: ${err.message}\n${stderr}`))
      else resolve({ code: typeof err?.code === 'number' ? err.code : 0, stdout, stderr })
    })
  })
}

export interface CliGateway {
  process: LabProcess
  peerId: string
  /** its UDP overlay and TCP addresses, ending in /p2p/<id> */
  udx: string
  tcp: string
  stun: string[]
}

/** A gateway started by the CLI on 127.0.0.1, every port ephemeral. */
export async function startCliGateway (dir: string, extra: string[] = []): Promise<CliGateway> {
  const gateway = startCli('gateway', ['gateway', '--host', '127.0.0.1', '--udp-port', '0', '--tcp-port', '0', '--api', '127.0.0.1:0',
    '--stun-port', '0', '--stun-other-port', '0', '--identity-file', join(dir, 'gateway.key'), '--json', ...extra], { cwd: dir })
  const started = await gateway.waitFor(e => e.event === 'gateway-started', 30_000, 'gateway-started')
  const addrs = started.addrs as string[]
  const udx = addrs.find(a => a.includes('/udx/'))
  const tcp = addrs.find(a => a.includes('/tcp/'))
  if (udx == null || tcp == null) throw new Error(`gateway addresses without udx or tcp: ${addrs.join(', ')}`)
  return { process: gateway, peerId: started.peerId as string, udx, tcp, stun: started.stun as string[] }
}

/** peer flags for loopback: a private address is all there is */
export const LOOPBACK_PEER = ['--host', '127.0.0.1', '--udp-port', '0', '--tcp-port', '0', '--allow-private-addresses', '--json']
