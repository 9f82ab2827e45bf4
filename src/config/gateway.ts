import { availableParallelism } from 'node:os'
import { z } from 'zod'
import { identityFile, integer, ipAddress, logLevel, peerIdString, port } from './fields.js'
import { iceServersConfigSchema, turnConfigSchema } from './turn.js'
import { gatewayAddress } from './peer.js'
import { loadConfig } from './sources.js'
import type { Settings } from './sources.js'

const HOUR_MS = 60 * 60 * 1000
const DEFAULT_RELAY_WORKERS = Math.min(Math.max(availableParallelism() - 1, 0), 4)

const gatewayConfigSchema = z.strictObject({
  /** IP the relay listens on */
  host: ipAddress.default('0.0.0.0'),
  udpPort: port.default(4001),
  tcpPort: port.default(4001),
  /** public IPs the gateway announces as /ip4/<a>/udp/<udpPort>/udx and /ip4/<a>/tcp/<tcpPort> (it cannot learn them itself) */
  announce: z.array(ipAddress).default([]),
  api: z.strictObject({
    host: ipAddress.default('127.0.0.1'),
    port: port.default(8080),
    /** GET /dashboard (page) and /api/v1/dashboard (its JSON); off by default, like any view of peers' addresses */
    dashboard: z.boolean().default(false)
  }).prefault({}),
  /** other gateways (multiaddrs ending in /p2p/<id>) to join the station DHT through; one is enough */
  bootstrap: z.array(gatewayAddress).default([]),
  identityFile: identityFile.default('./.natmesh/gateway.key'),
  relay: z.strictObject({
    maxReservations: integer(1).default(1024),
    reservationTtlMs: integer(1000).default(2 * HOUR_MS),
    /** how long a departed peer's reservation outlives its last connection (a reconnect within it keeps the slot) */
    reservationGraceMs: integer(0).default(10_000),
    maxCircuitsPerPeer: integer(1).default(16),
    /**
     * limits of one relayed connection. natmesh relays real traffic until the direct path is up (and for
     * symmetric NATs, for good), so they are far above libp2p's 2 min / 128 KiB; sessions resume on a new
     * relayed connection when one runs out
     */
    circuitDurationMs: integer(1000).default(10 * 60_000),
    /** a safe integer, so `BigInt(circuitDataBytes)` is exact */
    circuitDataBytes: integer(1).default(64 * 1024 * 1024),
    /** peers whose circuits are not limited */
    allowlist: z.array(peerIdString).default([]),
    /**
     * join circuits between natmesh peers on the UDP overlay inside udx (forwarded circuits, end-to-end noise),
     * rather than decrypting and re-multiplexing them; off: every circuit is circuit relay v2 through the gateway
     */
    forwarding: z.boolean().default(true),
    /**
     * relay worker threads that forward circuits, each on its own core and UDP port (0: all on the main event
     * loop). Unset: one per core but one, at most 4, once workerPort is set, else 0. Workers need ports of
     * their own, and a firewall that does not pass them costs each peer a 2.5 s stall before it falls back; one
     * core already forwards ~150 MiB/s, so more cores are for operators who name the ports (and open them)
     */
    workers: integer(0).max(64).optional(),
    /** worker i's UDP port is workerPort + i; 0: ephemeral ports (fine without a firewall in front) */
    workerPort: port.default(0)
  }).prefault({}).transform(relay => ({ ...relay, workers: relay.workers ?? (relay.workerPort !== 0 ? DEFAULT_RELAY_WORKERS : 0) })),
  /**
   * who gets in, per source IP. Carrier NATs put thousands of users behind one address, so the per-IP limits are
   * far above libp2p's (5 connections/s, 10 pending in all); they keep one source from taking every slot
   */
  admission: z.strictObject({
    /** new inbound connections per second from one IP (libp2p's inboundConnectionThreshold) */
    connectionsPerIpPerSecond: integer(1).default(200),
    /** inbound connections in their handshake at once, all sources (libp2p's maxIncomingPendingConnections) */
    maxPendingConnections: integer(1).default(1024),
    /** of those, from one IP */
    maxPendingConnectionsPerIp: integer(1).default(128),
    /** UDP overlay set-ups one IP may hold unconfirmed (HELLO answered, no data back yet) */
    maxPendingUdpSetupsPerIp: integer(1).default(64),
    /** new UDP overlay set-ups per second from one IP, after a burst of twice as many; 0: no rate */
    udpSetupsPerIpPerSecond: integer(0).default(200)
  }).prefault({}),
  /** STUN (RFC 8489 Binding + RFC 5780 behaviour discovery) for peers' NAT type detection and ICE */
  stun: z.strictObject({
    enabled: z.boolean().default(true),
    port: port.default(3478),
    /** the second port RFC 5780 behaviour tests need */
    otherPort: port.default(3479),
    /** a second IP of this host: with it, peers can tell full cone from restricted cone NATs */
    alternateAddress: ipAddress.optional(),
    /** per source IP; 0 turns the limit off */
    ratePerSecond: integer(0).default(100),
    burst: integer(1).default(200)
  }).refine(stun => stun.port === 0 || stun.port !== stun.otherPort, {
    path: ['otherPort'],
    message: 'must differ from stun.port'
  }).prefault({}),
  turn: turnConfigSchema,
  iceServers: iceServersConfigSchema,
  logLevel
})

export type GatewayConfig = z.output<typeof gatewayConfigSchema>

/** What the CLI passes in: commander's option values, keyed like the config with nested keys flattened */
export interface GatewayFlags {
  host?: string
  udpPort?: number | string
  tcpPort?: number | string
  /** comma-separated or repeated */
  announce?: string | string[]
  /** "host:port" */
  api?: string
  /** api.dashboard */
  dashboard?: boolean | string
  /** comma-separated or repeated */
  bootstrap?: string | string[]
  identityFile?: string
  maxReservations?: number | string
  reservationTtlMs?: number | string
  reservationGraceMs?: number | string
  maxCircuitsPerPeer?: number | string
  circuitDurationMs?: number | string
  circuitDataBytes?: number | string
  /** comma-separated or repeated */
  allowlist?: string | string[]
  /** relay.forwarding (`--no-relay-forwarding` with commander) */
  relayForwarding?: boolean | string
  relayWorkers?: number | string
  relayWorkerPort?: number | string
  connectionsPerIpPerSecond?: number | string
  maxPendingConnections?: number | string
  maxPendingConnectionsPerIp?: number | string
  maxPendingUdpSetupsPerIp?: number | string
  udpSetupsPerIpPerSecond?: number | string
  /** stun.enabled (`--no-stun` with commander) */
  stun?: boolean | string
  stunPort?: number | string
  stunOtherPort?: number | string
  stunAlternateAddress?: string
  stunRatePerSecond?: number | string
  stunBurst?: number | string
  turn?: boolean | string
  turnPort?: number | string
  turnExternalIp?: string
  turnSecretFile?: string
  /** env only in practice (NATMESH_ICE_API_TOKEN): a token on the command line shows in `ps` */
  iceApiToken?: string
  /** iceServers.corsOrigins; comma-separated or repeated */
  iceCorsOrigin?: string | string[]
  logLevel?: string
}

const gatewaySettings: Settings<GatewayFlags> = {
  host: { path: ['host'], kind: 'string' },
  udpPort: { path: ['udpPort'], kind: 'integer' },
  tcpPort: { path: ['tcpPort'], kind: 'integer' },
  announce: { path: ['announce'], kind: 'list' },
  api: { path: ['api'], kind: 'hostPort' },
  dashboard: { path: ['api', 'dashboard'], kind: 'boolean' },
  bootstrap: { path: ['bootstrap'], kind: 'list' },
  identityFile: { path: ['identityFile'], kind: 'string' },
  maxReservations: { path: ['relay', 'maxReservations'], kind: 'integer' },
  reservationTtlMs: { path: ['relay', 'reservationTtlMs'], kind: 'integer' },
  reservationGraceMs: { path: ['relay', 'reservationGraceMs'], kind: 'integer' },
  maxCircuitsPerPeer: { path: ['relay', 'maxCircuitsPerPeer'], kind: 'integer' },
  circuitDurationMs: { path: ['relay', 'circuitDurationMs'], kind: 'integer' },
  circuitDataBytes: { path: ['relay', 'circuitDataBytes'], kind: 'integer' },
  allowlist: { path: ['relay', 'allowlist'], kind: 'list' },
  relayForwarding: { path: ['relay', 'forwarding'], kind: 'boolean' },
  relayWorkers: { path: ['relay', 'workers'], kind: 'integer' },
  relayWorkerPort: { path: ['relay', 'workerPort'], kind: 'integer' },
  connectionsPerIpPerSecond: { path: ['admission', 'connectionsPerIpPerSecond'], kind: 'integer' },
  maxPendingConnections: { path: ['admission', 'maxPendingConnections'], kind: 'integer' },
  maxPendingConnectionsPerIp: { path: ['admission', 'maxPendingConnectionsPerIp'], kind: 'integer' },
  maxPendingUdpSetupsPerIp: { path: ['admission', 'maxPendingUdpSetupsPerIp'], kind: 'integer' },
  udpSetupsPerIpPerSecond: { path: ['admission', 'udpSetupsPerIpPerSecond'], kind: 'integer' },
  stun: { path: ['stun', 'enabled'], kind: 'boolean' },
  stunPort: { path: ['stun', 'port'], kind: 'integer' },
  stunOtherPort: { path: ['stun', 'otherPort'], kind: 'integer' },
  stunAlternateAddress: { path: ['stun', 'alternateAddress'], kind: 'string' },
  stunRatePerSecond: { path: ['stun', 'ratePerSecond'], kind: 'integer' },
  stunBurst: { path: ['stun', 'burst'], kind: 'integer' },
  turn: { path: ['turn', 'enabled'], kind: 'boolean' },
  turnPort: { path: ['turn', 'port'], kind: 'integer' },
  turnExternalIp: { path: ['turn', 'externalIp'], kind: 'string' },
  turnSecretFile: { path: ['turn', 'secretFile'], kind: 'string' },
  iceApiToken: { path: ['iceServers', 'apiToken'], kind: 'string' },
  iceCorsOrigin: { path: ['iceServers', 'corsOrigins'], kind: 'list' },
  logLevel: { path: ['logLevel'], kind: 'string' }
}

export interface LoadGatewayConfigInit {
  /** YAML file (from --config); defaults to $NATMESH_CONFIG */
  file?: string
  env: Record<string, string | undefined>
  flags: GatewayFlags
}

/** @throws {ConfigError} listing every invalid setting with its path and source */
export async function loadGatewayConfig (init: LoadGatewayConfigInit): Promise<GatewayConfig> {
  return loadConfig({ role: 'gateway', schema: gatewayConfigSchema, settings: gatewaySettings, ...init })
}
