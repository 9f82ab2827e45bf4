/**
 * ICE mode in the namespace NAT lab: the session lab (bench/lib/upgrade-lab.ts) plus a real coturn in the gateway's
 * namespace (use-auth-secret, UDP 3480) and peer configs that point session agents at it. Shared by
 * test/lab/ice.test.ts and bench/ice.ts; needs root, coturn (`turnserver`) and a built dist/.
 */
import { createHmac, randomBytes } from 'node:crypto'
import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { Lab } from './upgrade-lab.ts'
import type { AgentInit, LabInit, Proc } from './upgrade-lab.ts'

export const TURN_PORT = 3480
/**
 * Peers offer their private host candidates too. Relaying to those must be refused (it is also what keeps a TURN
 * server from being used to reach its own network): in the lab the gateway has no route to them, sending fails,
 * and coturn then drops the whole allocation, leaving the client with a dead one.
 */
export const DENIED_PEER_RANGES = ['0.0.0.0-0.255.255.255', '10.0.0.0-10.255.255.255', '100.64.0.0-100.127.255.255', '127.0.0.0-127.255.255.255',
  '169.254.0.0-169.254.255.255', '172.16.0.0-172.31.255.255', '192.168.0.0-192.168.255.255']

/** a coturn REST-API credential (username `expiry:name`, base64 HMAC-SHA1 of it under the shared secret) */
export function turnCredential (secret: string, name: string, ttlS: number): { username: string, credential: string } {
  const username = `${Math.floor(Date.now() / 1000) + ttlS}:${name}`
  return { username, credential: createHmac('sha1', secret).update(username).digest('base64') }
}

export class IceLab extends Lab {
  readonly turnSecret = randomBytes(16).toString('hex')
  turn?: Proc

  constructor (init: LabInit) {
    super(init)
  }

  override async start (): Promise<void> {
    await super.start()
    await this.startTurn()
  }

  /** coturn in the gateway namespace, relaying on the gateway's public address */
  async startTurn (): Promise<void> {
    const ip = this.topo.gatewayIp(0)
    const turn = this.spawnProcess('coturn', this.topo.gateway(0), 'turnserver', ['-n', '--listening-ip', ip, '--relay-ip', ip,
      '--listening-port', String(TURN_PORT), '--min-port', '49152', '--max-port', '49999', '--use-auth-secret', '--static-auth-secret', this.turnSecret,
      '--realm', 'natmesh', '--fingerprint', '--no-tls', '--no-dtls', '--no-cli', '--no-software-attribute', ...DENIED_PEER_RANGES.flatMap(range => ['--denied-peer-ip', range]), '--verbose', '--log-file', this.turnLogFile, '--simple-log', '--no-stdout-log',
      '--userdb', join(this.dir, 'turndb'), '--pidfile', join(this.dir, 'turnserver.pid')])
    this.turn = turn
    const deadline = Date.now() + 10_000
    while (!/Total General servers/.test(await this.turnLog())) {
      if (!turn.running) throw new Error(`coturn exited: ${turn.stderr.slice(-2000)}`)
      if (Date.now() > deadline) throw new Error(`coturn did not start within 10 s: ${(await this.turnLog()).slice(-2000)}`)
      await new Promise(resolve => setTimeout(resolve, 50))
    }
  }

  get turnLogFile (): string {
    return join(this.dir, 'turnserver.log')
  }

  /** what coturn logged so far (it writes to a file: its stdout is block-buffered into a pipe) */
  async turnLog (): Promise<string> {
    return readFile(this.turnLogFile, 'utf8').catch(() => '')
  }

  /**
   * A peer YAML config for ice mode in `slot`: coturn as STUN and TURN server (until the gateway hands its own
   * out), the strategy history in the lab's directory.
   */
  async iceConfig (slot: string, name: string, natType = 'auto'): Promise<string> {
    const ip = this.topo.gatewayIp(0)
    const { username, credential } = turnCredential(this.turnSecret, name, 3600)
    const file = join(this.dir, `${name}.yaml`)
    await writeFile(file, [
      'mode: ice',
      'ice:',
      `  natType: ${natType}`,
      `  historyFile: ${JSON.stringify(join(this.dir, `${slot}-ice-strategy.json`))}`,
      '  servers:',
      `    - stun:${ip}:${TURN_PORT}`,
      `    - urls: turn:${ip}:${TURN_PORT}`,
      `      username: ${JSON.stringify(username)}`,
      `      credential: ${JSON.stringify(credential)}`,
      ''
    ].join('\n'))
    return file
  }

  /** a session agent in ice mode */
  async iceAgent (slot: string, init: AgentInit, name = slot, natType = 'auto'): Promise<Proc> {
    return this.agent(slot, { ...init, configFile: await this.iceConfig(slot, name, natType) }, name)
  }
}
