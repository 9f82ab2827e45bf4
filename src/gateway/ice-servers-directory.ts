import type { GatewayConfig } from '../config/index.js'
import type { IceServer, IceServersResponse } from '../ice-servers/types.js'
import { ANY_ADDRESS, formatHost } from '../turn/coturn/turn-service.js'
import type { TurnService } from '../turn/coturn/turn-service.js'

export interface IceServersDirectoryInit {
  /** the gateway's own STUN server(s), e.g. stun:203.0.113.7:3478; asked each time (its port may be bound late) */
  ownStunUrls: () => string[]
  /** absent when the gateway runs no TURN server */
  turn?: TurnService
  /** listed last */
  publicStunUrls: string[]
  /** the ttl reported when there is no TURN credential to bound it */
  defaultTtlSeconds: number
}

/** What a gateway hands out as ICE servers: its own STUN, its own TURN with a fresh credential, then public STUN. */
export class IceServersDirectory {
  private readonly init: IceServersDirectoryInit

  constructor (init: IceServersDirectoryInit) {
    this.init = init
  }

  /** @param identity whom the TURN credential is for (a peer id, or an API client's label) */
  serversFor (identity: string): IceServersResponse {
    const iceServers: IceServer[] = []
    const ownStunUrls = this.init.ownStunUrls()
    if (ownStunUrls.length > 0) iceServers.push({ urls: ownStunUrls })

    const turn = this.init.turn
    if (turn?.available === true && turn.urls.length > 0) {
      const { username, credential } = turn.credentialFor(identity)
      iceServers.push({ urls: turn.urls, username, credential })
    }

    if (this.init.publicStunUrls.length > 0) iceServers.push({ urls: this.init.publicStunUrls })

    return { iceServers, ttl: turn?.available === true ? turn.ttlSeconds : this.init.defaultTtlSeconds }
  }
}

/**
 * The directory a gateway with this config serves: own STUN on the announced (or listen) address.
 * @param stunPort the port its own STUN server has bound (configured as 0, it is known only once listening)
 */
export function gatewayIceServers (config: GatewayConfig, turn?: TurnService, stunPort?: () => number | undefined): IceServersDirectory {
  const ip = turn?.publicIp ?? config.announce[0] ?? (ANY_ADDRESS.has(config.host) ? undefined : config.host)
  return new IceServersDirectory({
    // the gateway's own STUN server when it runs one; iceServers.stunPort names a STUN server run beside it
    ownStunUrls: () => {
      const port = config.stun.enabled ? (stunPort?.() ?? config.stun.port) : config.iceServers.stunPort
      return ip == null || port === 0 ? [] : [`stun:${formatHost(ip)}:${port}`]
    },
    turn,
    publicStunUrls: config.iceServers.publicStunUrls,
    defaultTtlSeconds: config.turn.ttlSeconds
  })
}
