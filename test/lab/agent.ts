import readline from 'node:readline'
import { fileURLToPath } from 'node:url'
import type { ChildProcess } from 'node:child_process'
import type { Topology } from '../../src/lab/index.js'

export interface AgentEvent {
  ev: string
  lport?: number
  from?: string
  port?: number
  msg?: string
  code?: string
}

const AGENT = fileURLToPath(new URL('./agent.mjs', import.meta.url))
const NODE = fileURLToPath(new URL('../../node_modules/.bin/node', import.meta.url))

/** Drives test/lab/agent.mjs running inside one lab namespace. */
export class Agent {
  readonly events: AgentEvent[] = []
  private readonly waiters = new Set<() => void>()

  private constructor (readonly ns: string, private readonly child: ChildProcess) {
    readline.createInterface({ input: child.stdout! }).on('line', (line) => {
      this.events.push(JSON.parse(line) as AgentEvent)
      for (const wake of this.waiters) wake()
    })
  }

  static async start (topo: Topology, ns: string): Promise<Agent> {
    const child = topo.spawnIn(ns, NODE, [AGENT], { stdio: ['pipe', 'pipe', 'inherit'] })
    const agent = new Agent(ns, child)
    await agent.waitFor((e) => e.ev === 'ready')
    return agent
  }

  send (cmd: Record<string, unknown>): void {
    this.child.stdin!.write(JSON.stringify(cmd) + '\n')
  }

  async udpBind (port: number): Promise<void> {
    this.send({ op: 'udp-bind', port })
    await this.waitFor((e) => e.ev === 'bound' && e.port === port)
  }

  async tcpListen (port: number): Promise<void> {
    this.send({ op: 'tcp-listen', port })
    await this.waitFor((e) => e.ev === 'listening' && e.port === port)
  }

  /** the first event (seen so far or arriving within timeoutMs) that matches */
  async waitFor (match: (e: AgentEvent) => boolean, timeoutMs = 3000): Promise<AgentEvent> {
    return await new Promise((resolve, reject) => {
      const check = (): void => {
        const hit = this.events.find(match)
        if (hit === undefined) return
        done()
        resolve(hit)
      }
      const timer = setTimeout(() => {
        done()
        reject(new Error(`agent in ${this.ns}: no matching event within ${timeoutMs} ms; saw ${JSON.stringify(this.events)}`))
      }, timeoutMs)
      const done = (): void => { clearTimeout(timer); this.waiters.delete(check) }
      this.waiters.add(check)
      check()
    })
  }

  stop (): void {
    this.child.stdin!.end()
  }
}

export const sleep = async (ms: number): Promise<void> => { await new Promise((resolve) => setTimeout(resolve, ms)) }
