import { fork } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import type { GatewayStats } from './relay-gateway-process.ts'

/** Drives a gateway forked as bench/lib/relay-gateway-process.ts: its addresses, CPU and memory, its stop. */
export class GatewayProcess {
  private readonly child: ChildProcess
  private readonly replies: Array<(stats: GatewayStats) => void> = []
  readonly addrs: Promise<string[]>
  /** the gateway's STUN ports, primary and other, known once `addrs` resolved */
  stunPorts: number[] = []

  /** `relayWorkers`: the gateway's --relay-workers (default: its config's default) */
  constructor (dir: string, allowlist: string[], execArgv: string[] = [], options: { relayWorkers?: number } = {}) {
    this.child = fork(new URL('./relay-gateway-process.ts', import.meta.url), [dir, allowlist.join(','), ...(options.relayWorkers != null ? [String(options.relayWorkers)] : [])], { execArgv })
    this.addrs = new Promise((resolve, reject) => {
      this.child.once('exit', (code) => { reject(new Error(`the gateway process exited with code ${code}`)) })
      this.child.on('message', (message: { addrs?: string[], stunPorts?: number[], stats?: GatewayStats }) => {
        if (message.stunPorts != null) this.stunPorts = message.stunPorts
        if (message.addrs != null) resolve(message.addrs)
        if (message.stats != null) this.replies.shift()?.(message.stats)
      })
    })
  }

  async stats (cmd: 'stats' | 'gc' = 'stats'): Promise<GatewayStats> {
    return new Promise(resolve => { this.replies.push(resolve); this.child.send({ cmd }) })
  }

  async stop (): Promise<void> {
    if (this.child.exitCode != null) return
    const exited = new Promise(resolve => this.child.once('exit', resolve))
    this.child.send({ cmd: 'stop' })
    await exited
  }
}
