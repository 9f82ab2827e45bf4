import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import '../transport/multiaddr.js' // registers /udx: gateway addresses may name the UDP overlay
import { isStationName, STATION_NAME_RULES } from '../stations/record.js'
import { identityFile, integer, ipAddress, logLevel, port } from './fields.js'
import { loadConfig } from './sources.js'
import { NAT_TYPES } from '../nat/types.js'
import type { Settings } from './sources.js'

export const PEER_MODES = ['relay-only', 'opportunistic', 'ice'] as const
export type PeerMode = typeof PEER_MODES[number]

/** `auto` learns the NAT's mapping behaviour; the others tell it, for operators who know their NAT */
export const NAT_MAPPINGS = ['auto', 'open', 'endpoint-independent', 'sequential', 'random'] as const
export type NatMappingSetting = typeof NAT_MAPPINGS[number]

/** a gateway is dialled by address and authenticated by peer id, so both must be in the multiaddr */
export const gatewayAddress = z.string().superRefine((value, ctx) => {
  let last
  try {
    last = multiaddr(value).getComponents().at(-1)
  } catch (err: any) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} is not a valid multiaddr (${err.message})` })
    return
  }

  if (last?.name !== 'p2p' || last.value == null) {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} must end with /p2p/<gateway peer id>` })
    return
  }

  try {
    peerIdFromString(last.value)
  } catch {
    ctx.addIssue({ code: 'custom', message: `${JSON.stringify(value)} ends with an invalid peer id` })
  }
})

/** what libjuice can use: STUN, or TURN over UDP */
const iceUrl = z.string().regex(/^(stun|turn):[^?]+(\?transport=udp)?$/, 'expected stun:host[:port] or turn:host[:port][?transport=udp]')

const peerConfigSchema = z.strictObject({
  gateways: z.array(gatewayAddress, {
    error: issue => issue.input === undefined ? 'at least one gateway multiaddr is required' : undefined
  }).min(1, 'at least one gateway multiaddr is required'),
  mode: z.enum(PEER_MODES).default('opportunistic'),
  /** the peer listens on both overlays (UDP and TCP); port 0 = ephemeral */
  host: ipAddress.default('0.0.0.0'),
  udpPort: port.default(0),
  tcpPort: port.default(0),
  natTraversal: z.strictObject({
    enabled: z.boolean().default(true),
    holePunchTimeoutMs: integer(100).default(5000),
    /** attempts per relayed connection, each up to holePunchTimeoutMs */
    holePunchRetries: integer(1).default(3),
    /** also punch to private (LAN, loopback) addresses: for peers on one LAN, and the loopback demo */
    allowPrivateAddresses: z.boolean().default(false),
    preferDirect: z.boolean().default(true),
    fallbackToRelay: z.boolean().default(true),
    /**
     * ask the gateway, with each forwarded circuit, for the other peer's overlay mapping (and let it pass ours on)
     * and dial it before DCUtR's exchange; off: only DCUtR's CONNECT tells either side anything
     */
    earlyDial: z.boolean().default(true),
    natMapping: z.enum(NAT_MAPPINGS).default('auto'),
    /** the step between mappings, with natMapping "sequential" */
    natMappingDelta: z.number().int().min(-1024).max(1024).refine(delta => delta !== 0, 'must not be 0').optional(),
    /** birthday punching through port-changing (symmetric) NATs; see README "Symmetric NATs" */
    birthday: z.strictObject({
      enabled: z.boolean().default(true),
      sockets: integer(1).max(512).default(256),
      probesPerSecond: integer(1).max(10_000).default(1000),
      maxProbes: integer(1).max(65_535).default(4000),
      sprayIntervalMs: integer(50).default(1000),
      timeBudgetMs: integer(100).max(60_000).default(6000),
      attemptsPerPeerPerMinute: integer(1).max(60).default(3)
    }).prefault({})
  }).refine(nat => nat.natMapping === 'sequential' || nat.natMappingDelta === undefined, {
    path: ['natMappingDelta'],
    message: 'only applies with natMapping "sequential"'
  }).prefault({}),
  /** mode `ice` (WebRTC with the gateways' STUN/TURN) */
  ice: z.strictObject({
    /** success history and adaptive timeout per connection strategy, kept across restarts */
    historyFile: z.string().min(1).default('./.natmesh/ice-strategy.json'),
    /** `auto`: what NAT type detection finds; or this peer's NAT type as known (a carrier-grade NAT, say) */
    natType: z.enum(['auto', ...NAT_TYPES]).default('auto'),
    /** servers of the peer's own (public fallbacks), after the gateways' own: `stun:host:port`, or RTCIceServer mappings with TURN credentials */
    servers: z.array(z.union([iceUrl, z.strictObject({
      urls: z.union([iceUrl, z.array(iceUrl).min(1)]),
      username: z.string().min(1).optional(),
      credential: z.string().min(1).optional()
    })])).default([])
  }).prefault({}),
  /** RFC 5780 NAT type detection against the gateways' STUN servers, at start-up and when the report is stale */
  natDetection: z.strictObject({
    enabled: z.boolean().default(true),
    cacheMs: integer(1000).default(5 * 60_000),
    /** the gateways' STUN ports: primary and, for behaviour tests, other (used when a gateway does not name it) */
    stunPorts: z.array(z.preprocess(value => typeof value === 'string' && /^\d+$/.test(value) ? Number(value) : value, port))
      .min(1).max(2, 'expected the primary and the other STUN port').default([3478, 3479]),
    /** one STUN test's wait for its answer */
    timeoutMs: integer(100).default(1500)
  }).prefault({}),
  /** names this peer announces in the gateways' DHT; others dial it as `station:<name>` */
  stations: z.array(z.string().refine(isStationName, `a station name has ${STATION_NAME_RULES}`)).default([]),
  /** a station record lives this long and is republished halfway (and whenever the reservations change) */
  stationTtlMs: integer(10_000).max(24 * 60 * 60_000).default(10 * 60_000),
  /** relay reservations are kept on this many gateways, the healthiest of the configured and discovered ones */
  maxGateways: integer(1).default(2),
  /** how often the DHT is asked for gateways beyond the configured ones */
  gatewayDiscoveryIntervalMs: integer(1000).default(60_000),
  /** one dial of one gateway address; UDP and TCP are raced, TCP starting 250 ms after UDP */
  gatewayDialTimeoutMs: integer(100).default(5000),
  /** while a gateway link runs over TCP, UDP is tried again this often (only UDP can hole punch) */
  gatewayUdpRetryMs: integer(1000).default(30_000),
  reconnect: z.strictObject({
    initialDelayMs: integer(1).default(500),
    maxDelayMs: integer(1).default(30_000)
  }).refine(reconnect => reconnect.maxDelayMs >= reconnect.initialDelayMs, {
    path: ['maxDelayMs'],
    message: 'must be >= reconnect.initialDelayMs'
  }).prefault({}),
  /** optional local status API (health, connections, sessions); off unless set */
  api: z.strictObject({
    host: ipAddress.default('127.0.0.1'),
    port
  }).optional(),
  identityFile: identityFile.default('./.natmesh/peer.key'),
  /**
   * the local control endpoint `natmesh status` and `natmesh ping` talk to: a unix socket (mode 0600), by default
   * next to the identity file (./.natmesh/peer.key → ./.natmesh/peer.sock); false turns it off
   */
  controlSocket: z.union([z.literal(false), z.string().min(1)]).optional(),
  logLevel
}).transform(config => ({
  ...config,
  controlSocket: config.controlSocket ?? defaultControlSocket(config.identityFile),
  natTraversal: config.mode === 'relay-only' ? { ...config.natTraversal, enabled: false } : config.natTraversal
}))

/** the control socket belongs to one identity: peers with their own key files in one directory get their own */
export function defaultControlSocket (identityFile: string): string {
  return identityFile.replace(/(\.key)?$/, '.sock')
}

export type PeerConfig = z.output<typeof peerConfigSchema>

/** What the CLI passes in: commander's option values, keyed like the config with nested keys flattened */
export interface PeerFlags {
  /** comma-separated or repeated */
  gateways?: string | string[]
  mode?: string
  host?: string
  udpPort?: number | string
  tcpPort?: number | string
  /** natTraversal.enabled (`--no-nat-traversal` with commander) */
  natTraversal?: boolean | string
  holePunchTimeoutMs?: number | string
  holePunchRetries?: number | string
  allowPrivateAddresses?: boolean | string
  preferDirect?: boolean | string
  fallbackToRelay?: boolean | string
  earlyDial?: boolean | string
  natMapping?: string
  natMappingDelta?: number | string
  /** natTraversal.birthday.enabled (`--no-birthday` with commander) */
  birthday?: boolean | string
  birthdaySockets?: number | string
  birthdayProbesPerSecond?: number | string
  birthdayMaxProbes?: number | string
  birthdayTimeBudgetMs?: number | string
  gatewayDialTimeoutMs?: number | string
  gatewayUdpRetryMs?: number | string
  /** natDetection.enabled (`--no-nat-detection` with commander) */
  natDetection?: boolean | string
  natDetectionCacheMs?: number | string
  /** comma-separated or repeated */
  stunPorts?: string | string[]
  /** comma-separated or repeated (`--station` on the command line) */
  stations?: string | string[]
  stationTtlMs?: number | string
  maxGateways?: number | string
  gatewayDiscoveryIntervalMs?: number | string
  reconnectInitialDelayMs?: number | string
  reconnectMaxDelayMs?: number | string
  iceHistoryFile?: string
  iceNatType?: string
  /** comma-separated or repeated STUN URLs */
  iceServers?: string | string[]
  /** "host:port" of the status API */
  api?: string
  identityFile?: string
  /** a path, or false (`--no-control-socket`) */
  controlSocket?: string | false
  logLevel?: string
}

const peerSettings: Settings<PeerFlags> = {
  gateways: { path: ['gateways'], kind: 'list' },
  mode: { path: ['mode'], kind: 'string' },
  host: { path: ['host'], kind: 'string' },
  udpPort: { path: ['udpPort'], kind: 'integer' },
  tcpPort: { path: ['tcpPort'], kind: 'integer' },
  natTraversal: { path: ['natTraversal', 'enabled'], kind: 'boolean' },
  holePunchTimeoutMs: { path: ['natTraversal', 'holePunchTimeoutMs'], kind: 'integer' },
  holePunchRetries: { path: ['natTraversal', 'holePunchRetries'], kind: 'integer' },
  allowPrivateAddresses: { path: ['natTraversal', 'allowPrivateAddresses'], kind: 'boolean' },
  preferDirect: { path: ['natTraversal', 'preferDirect'], kind: 'boolean' },
  fallbackToRelay: { path: ['natTraversal', 'fallbackToRelay'], kind: 'boolean' },
  earlyDial: { path: ['natTraversal', 'earlyDial'], kind: 'boolean' },
  natMapping: { path: ['natTraversal', 'natMapping'], kind: 'string' },
  natMappingDelta: { path: ['natTraversal', 'natMappingDelta'], kind: 'integer' },
  birthday: { path: ['natTraversal', 'birthday', 'enabled'], kind: 'boolean' },
  birthdaySockets: { path: ['natTraversal', 'birthday', 'sockets'], kind: 'integer' },
  birthdayProbesPerSecond: { path: ['natTraversal', 'birthday', 'probesPerSecond'], kind: 'integer' },
  birthdayMaxProbes: { path: ['natTraversal', 'birthday', 'maxProbes'], kind: 'integer' },
  birthdayTimeBudgetMs: { path: ['natTraversal', 'birthday', 'timeBudgetMs'], kind: 'integer' },
  gatewayDialTimeoutMs: { path: ['gatewayDialTimeoutMs'], kind: 'integer' },
  gatewayUdpRetryMs: { path: ['gatewayUdpRetryMs'], kind: 'integer' },
  natDetection: { path: ['natDetection', 'enabled'], kind: 'boolean' },
  natDetectionCacheMs: { path: ['natDetection', 'cacheMs'], kind: 'integer' },
  stunPorts: { path: ['natDetection', 'stunPorts'], kind: 'list' },
  stations: { path: ['stations'], kind: 'list' },
  stationTtlMs: { path: ['stationTtlMs'], kind: 'integer' },
  maxGateways: { path: ['maxGateways'], kind: 'integer' },
  gatewayDiscoveryIntervalMs: { path: ['gatewayDiscoveryIntervalMs'], kind: 'integer' },
  reconnectInitialDelayMs: { path: ['reconnect', 'initialDelayMs'], kind: 'integer' },
  reconnectMaxDelayMs: { path: ['reconnect', 'maxDelayMs'], kind: 'integer' },
  iceHistoryFile: { path: ['ice', 'historyFile'], kind: 'string' },
  iceNatType: { path: ['ice', 'natType'], kind: 'string' },
  iceServers: { path: ['ice', 'servers'], kind: 'list' },
  api: { path: ['api'], kind: 'hostPort' },
  identityFile: { path: ['identityFile'], kind: 'string' },
  controlSocket: { path: ['controlSocket'], kind: 'string' },
  logLevel: { path: ['logLevel'], kind: 'string' }
}

export interface LoadPeerConfigInit {
  /** YAML file (from --config); defaults to $NATMESH_CONFIG */
  file?: string
  env: Record<string, string | undefined>
  flags: PeerFlags
}

/** @throws {ConfigError} listing every invalid setting with its path and source */
export async function loadPeerConfig (init: LoadPeerConfigInit): Promise<PeerConfig> {
  return loadConfig({ role: 'peer', schema: peerConfigSchema, settings: peerSettings, ...init })
}
