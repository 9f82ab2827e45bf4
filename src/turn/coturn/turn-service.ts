import { randomBytes } from 'node:crypto'
import { join, resolve } from 'node:path'
import type { Startable } from '@libp2p/interface'
import type { Logger } from '../../core/logging.js'
import { CoturnAdmin, freeTcpPort } from './coturn-admin.js'
import type { CoturnSession } from './coturn-admin.js'
import { writeCoturnConfig } from './coturn-config.js'
import { expiryOf, mintTurnCredential } from './credentials.js'
import { stopLeftoverCoturn } from './leftover.js'
import type { TurnCredential } from './credentials.js'
import { loadOrCreateTurnSecret } from './secret.js'
import { NatmeshError } from '../../core/errors.js'
import { TurnSupervisor } from './supervisor.js'

/** The gateway config's `turn` section, as the service reads it */
export interface TurnSettings {
  required: boolean
  port: number
  listenIp?: string
  externalIp?: string
  realm: string
  ttlSeconds: number
  /** the shared secret, or the file holding it (made on first start) */
  secret?: string
  secretFile: string
  relayPortRange: { min: number, max: number }
  deniedPeerIps: string[]
  allowedPeerIps: string[]
  stateDir: string
  binary: string
  /** coturn's restart backoff */
  restartDelayMs: { initial: number, max: number }
  expirySweepMs: number
}

export interface TurnServiceInit {
  config: TurnSettings
  /** the gateway's listen address (`host`); coturn listens there unless turn.listenIp says otherwise */
  gatewayHost: string
  /** the gateway's announced addresses; the first is the TURN address handed out unless turn.externalIp is set */
  announce: string[]
  logger: Logger
}

export const ANY_ADDRESS = new Set(['0.0.0.0', '::'])

/** an IP as the host part of a URL */
export function formatHost (ip: string): string {
  return ip.includes(':') ? `[${ip}]` : ip
}

/**
 * The gateway's TURN server: coturn with a generated config, supervised, plus the credentials it accepts.
 * When coturn cannot run and TURN is not `required`, the gateway carries on without it: `available` is false and
 * `unavailableReason` says why.
 */
export class TurnService implements Startable {
  private readonly config: TurnSettings
  private readonly logger: Logger
  private readonly listenIp?: string
  /** the address clients reach coturn on, as written into turn: URLs */
  readonly publicIp?: string
  private secret?: string
  private supervisor?: TurnSupervisor
  private sweepTimer?: NodeJS.Timeout
  private sweeping = false
  private sweepFailing = false
  /** sessions already cancelled: coturn may list one for a moment after, and it must not count twice */
  private readonly cancelled = new Set<string>()
  unavailableReason?: string
  /** allocations ended because their credential had expired */
  expiredAllocationsEnded = 0
  /** the sessions (allocations) coturn held at the last sweep, every expirySweepMs; the dashboard shows them */
  sessions: readonly CoturnSession[] = []

  constructor (init: TurnServiceInit) {
    this.config = init.config
    this.logger = init.logger
    const listenIp = init.config.listenIp ?? init.gatewayHost
    this.listenIp = ANY_ADDRESS.has(listenIp) ? undefined : listenIp
    this.publicIp = init.config.externalIp ?? init.announce[0] ?? this.listenIp
  }

  get available (): boolean {
    return this.supervisor != null && this.unavailableReason == null
  }

  /** coturn's process id while it runs */
  get pid (): number | undefined {
    return this.supervisor?.pid
  }

  get restarts (): number {
    return this.supervisor?.restarts ?? 0
  }

  get ttlSeconds (): number {
    return this.config.ttlSeconds
  }

  /** turn: URLs, UDP first (what ICE agents try first) */
  get urls (): string[] {
    const ip = this.publicIp
    if (!this.available || ip == null) return []
    return ['udp', 'tcp'].map(transport => `turn:${formatHost(ip)}:${this.config.port}?transport=${transport}`)
  }

  /** @throws {NatmeshError} TURN_UNAVAILABLE only when turn.required is set */
  async start (): Promise<void> {
    try {
      await this.startCoturn()
    } catch (err: any) {
      if (this.config.required) throw err
      this.unavailableReason = err.message
      this.supervisor = undefined
      this.logger.warn(`TURN disabled: ${err.message as string}`)
    }
  }

  async stop (): Promise<void> {
    clearInterval(this.sweepTimer)
    this.sweepTimer = undefined
    await this.supervisor?.stop()
  }

  /** a credential coturn accepts until `ttlSeconds` from now */
  credentialFor (identity: string): TurnCredential {
    if (this.secret == null || !this.available) throw new NatmeshError('TURN_UNAVAILABLE', `TURN is not running: ${this.unavailableReason ?? 'not started'}`)
    return mintTurnCredential({ secret: this.secret, identity, ttlSeconds: this.config.ttlSeconds })
  }

  private async startCoturn (): Promise<void> {
    if (this.publicIp == null) {
      throw new NatmeshError('TURN_UNAVAILABLE', 'no address to hand out for TURN: set announce (or turn.externalIp), or listen on a specific host')
    }

    const { secret, created } = this.config.secret != null
      ? { secret: this.config.secret, created: false }
      : await loadOrCreateTurnSecret(this.config.secretFile)
    if (created) this.logger.info(`created TURN secret in ${this.config.secretFile}`)
    this.secret = secret

    // loopback only, a fresh password per start; the config file holding it is the owner's only
    const cli = { host: '127.0.0.1', port: await freeTcpPort('127.0.0.1'), password: randomBytes(24).toString('hex') }
    const { configFile, pidFile } = await writeCoturnConfig({
      listenIp: this.listenIp,
      externalIp: this.config.externalIp ?? (this.publicIp === this.listenIp ? undefined : this.publicIp),
      port: this.config.port,
      realm: this.config.realm,
      secret,
      relayPortRange: this.config.relayPortRange,
      deniedPeerIps: this.config.deniedPeerIps,
      allowedPeerIps: this.config.allowedPeerIps,
      stateDir: this.config.stateDir,
      cli
    })

    await stopLeftoverCoturn(pidFile, configFile, this.logger)
    this.supervisor = new TurnSupervisor({
      binary: this.config.binary,
      configFile,
      probe: { host: this.listenIp ?? (this.publicIp.includes(':') ? '::1' : '127.0.0.1'), port: this.config.port },
      restartDelayMs: this.config.restartDelayMs,
      logger: this.logger
    })
    await this.supervisor.start()
    this.logger.info({ urls: this.urls }, 'TURN server running')
    const admin = new CoturnAdmin(cli, join(resolve(this.config.stateDir), 'sessions.txt'))
    this.sweepTimer = setInterval(() => { void this.endExpiredAllocations(admin) }, this.config.expirySweepMs)
  }

  /**
   * coturn checks a credential's expiry only when an allocation is made: Refresh, CreatePermission and
   * ChannelBind go on working with the key it cached. So the gateway ends, through coturn's CLI, every
   * session whose credential has expired.
   */
  private async endExpiredAllocations (admin: CoturnAdmin): Promise<void> {
    if (this.sweeping || this.supervisor?.pid == null) return
    this.sweeping = true
    try {
      const now = Math.floor(Date.now() / 1000)
      // coturn's own rule for a new allocation: valid while the expiry is not before now
      const sessions = await admin.sessions()
      const listed = new Set(sessions.map(session => session.id))
      for (const id of this.cancelled) if (!listed.has(id)) this.cancelled.delete(id)
      const expired = sessions.filter(session => !this.cancelled.has(session.id) && (expiryOf(session.username) ?? Infinity) < now)
      await admin.cancel(expired.map(session => session.id))
      for (const session of expired) this.cancelled.add(session.id)
      this.sessions = sessions.filter(session => !this.cancelled.has(session.id))
      this.expiredAllocationsEnded += expired.length
      if (expired.length > 0) this.logger.info({ users: expired.map(session => session.username) }, `ended ${expired.length} TURN allocation(s) whose credential expired`)
      if (this.sweepFailing) this.logger.info('coturn CLI answers again: expired TURN allocations are ended again')
      this.sweepFailing = false
    } catch (err: any) {
      // logged once per outage (coturn may be restarting), and not at all once the gateway is stopping
      if (!this.sweepFailing && this.sweepTimer != null) this.logger.warn(`cannot end expired TURN allocations: ${err.message as string}`)
      this.sweepFailing = true
    } finally {
      this.sweeping = false
    }
  }
}
