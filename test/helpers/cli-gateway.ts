import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { LabProcess } from '../../dist/lab/trial-process.js'

const CLI = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url))
/** a gateway that stops at all stops within this; SIGKILL after it */
const STOP_GRACE_MS = 30_000

/**
 * A gateway started the way a user starts one: `natmesh gateway` as a child process (needs a built dist/), on
 * 127.0.0.1 with ephemeral ports and no STUN server. Its output is read by the lab's process reader (LabProcess).
 */
export class CliGateway {
  readonly peerId: string
  readonly addrs: string[]
  readonly api: string
  /** the UDP ports of its relay workers (gateway-started's relayWorkerPorts) */
  readonly relayWorkerPorts: number[]
  private readonly process: LabProcess
  private readonly dir: string

  private constructor (init: { process: LabProcess, dir: string, started: Record<string, unknown> }) {
    this.process = init.process
    this.dir = init.dir
    this.peerId = String(init.started.peerId)
    this.addrs = init.started.addrs as string[]
    this.api = String(init.started.api)
    this.relayWorkerPorts = Array.isArray(init.started.relayWorkerPorts) ? init.started.relayWorkerPorts.map(Number) : []
  }

  /** `cli`: another build's dist/cli/index.js (benchmarks measure main's code with it) */
  static async start (args: string[], options: { cli?: string } = {}): Promise<CliGateway> {
    const dir = await mkdtemp(join(tmpdir(), 'natmesh-cli-gw-'))
    const child = spawn(process.execPath, [options.cli ?? CLI, 'gateway', '--json', '--host', '127.0.0.1', '--udp-port', '0', '--tcp-port', '0',
      '--api', '127.0.0.1:0', '--no-stun', '--identity-file', join(dir, 'gateway.key'), ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    const gateway = new LabProcess('gateway', child)
    try {
      const started = await gateway.waitFor(e => e.event === 'gateway-started', 60_000, 'gateway-started')
      return new CliGateway({ process: gateway, dir, started })
    } catch (err) {
      await gateway.stop(0)
      await rm(dir, { recursive: true, force: true })
      throw new Error(`${(err as Error).message}: ${gateway.stderr.tail()}`)
    }
  }

  get pid (): number {
    return this.process.child.pid ?? 0
  }

  /** the gateway's address on `transport` ('tcp' or 'udx'), with /p2p/<id> */
  address (transport: 'tcp' | 'udx'): string {
    const addr = this.addrs.find(a => transport === 'tcp' ? a.includes('/tcp/') : a.includes('/udx'))
    if (addr == null) throw new Error(`the gateway has no ${transport} address: ${this.addrs.join(', ')}`)
    return addr
  }

  /** what it logged lately (stderr) */
  logTail (): string {
    return this.process.stderr.tail()
  }

  async metrics (): Promise<string> {
    return (await fetch(`${this.api}/metrics`)).text()
  }

  async stop (): Promise<void> {
    await this.process.stop(STOP_GRACE_MS)
    await rm(this.dir, { recursive: true, force: true })
  }
}
