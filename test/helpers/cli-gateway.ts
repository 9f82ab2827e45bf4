import { spawn } from 'node:child_process'
import type { ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'

const CLI = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url))

/**
 * A gateway started the way a user starts one: `natmesh gateway` as a child process (needs a built dist/), on
 * 127.0.0.1 with ephemeral ports and no STUN server.
 */
export class CliGateway {
  readonly peerId: string
  readonly addrs: string[]
  readonly api: string
  /** stderr so far, for failure messages */
  readonly stderr: string[]
  private readonly child: ChildProcessWithoutNullStreams
  private readonly dir: string

  private constructor (init: { child: ChildProcessWithoutNullStreams, dir: string, started: { peerId: string, addrs: string[], api: string }, stderr: string[] }) {
    this.child = init.child
    this.dir = init.dir
    this.peerId = init.started.peerId
    this.addrs = init.started.addrs
    this.api = init.started.api
    this.stderr = init.stderr
  }

  /** `cli`: another build's dist/cli/index.js (benchmarks measure main's code with it) */
  static async start (args: string[], options: { cli?: string } = {}): Promise<CliGateway> {
    const dir = await mkdtemp(join(tmpdir(), 'natmesh-cli-gw-'))
    const host = '127.0.0.1'
    const child = spawn(process.execPath, [options.cli ?? CLI, 'gateway', '--json', '--host', host, '--udp-port', '0', '--tcp-port', '0',
      '--api', '127.0.0.1:0', '--no-stun', '--identity-file', join(dir, 'gateway.key'), ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
    const stderr: string[] = []
    createInterface({ input: child.stderr }).on('line', line => { stderr.push(line) })
    const lines = createInterface({ input: child.stdout })
    const exited = once(child, 'exit').then(([code]) => { throw new Error(`gateway exited with ${String(code)} before starting: ${stderr.join('\n')}`) })
    const started = new Promise<{ peerId: string, addrs: string[], api: string }>((resolve) => {
      lines.on('line', line => {
        try {
          const event = JSON.parse(line) as { event?: string, peerId: string, addrs: string[], api: string }
          if (event.event === 'gateway-started') resolve(event)
        } catch {}
      })
    })
    try {
      return new CliGateway({ child, dir, stderr, started: await Promise.race([started, exited]) })
    } catch (err) {
      await rm(dir, { recursive: true, force: true })
      throw err
    }
  }

  get pid (): number {
    return this.child.pid ?? 0
  }

  /** the gateway's address on `transport` ('tcp' or 'udx'), with /p2p/<id> */
  address (transport: 'tcp' | 'udx'): string {
    const addr = this.addrs.find(a => transport === 'tcp' ? a.includes('/tcp/') : a.includes('/udx'))
    if (addr == null) throw new Error(`the gateway has no ${transport} address: ${this.addrs.join(', ')}`)
    return addr
  }

  async metrics (): Promise<string> {
    return (await fetch(`${this.api}/metrics`)).text()
  }

  async stop (): Promise<void> {
    if (this.child.exitCode == null && this.child.signalCode == null) {
      const exited = once(this.child, 'exit')
      this.child.kill('SIGTERM')
      await exited
    }
    await rm(this.dir, { recursive: true, force: true })
  }
}
