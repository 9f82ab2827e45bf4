import { peerIdFromString } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import '../transport/multiaddr.js' // registers /udx: gateway addresses may name the UDP overlay
import { isStationName, STATION_NAME_RULES } from '../stations/record.js'
import { identityFile, integer, ipAddress, logLevel, port } from './fields.js'
import { loadConfig } from './sources.js'
import type { Settings } from './sources.js'

export const PEER_MODES = ['relay-only', 'opportunistic'] as const
export type PeerMode = typeof PEER_MODES[number]

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

const peerConfigSchema = z.strictObject({
  gateways: z.array(gatewayAddress, {
    error: issue => issue.input === undefined ? 'at least one gateway multiaddr is required' : undefined
  }).min(1, 'at least one gateway multiaddr is required'),
  mode: z.enum(PEER_MODES, {
    error: issue => issue.input === 'ice' ? 'mode "ice" is not available yet: use "relay-only" or "opportunistic"' : undefined
  }).default('opportunistic'),
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
    fallbackToRelay: z.boolean().default(true)
  }).prefault({}),
  /** names this peer announces in the gateways' DHT; others dial it as `station:<name>` */
  stations: z.array(z.string().refine(isStationName, `a station name has ${STATION_NAME_RULES}`)).default([]),
  /** a station record lives this long and is republished halfway (and whenever the reservations change) */
  stationTtlMs: integer(10_000).max(24 * 60 * 60_000).default(10 * 60_000),
  /** relay reservations are kept on this many gateways, the healthiest of the configured and discovered ones */
  maxGateways: integer(1).default(2),
  /** how often the DHT is asked for gateways beyond the configured ones */
  gatewayDiscoveryIntervalMs: integer(1000).default(60_000),
  /** how long to wait for the UDP overlay to reach a gateway before falling back to TCP */
  gatewayDialTimeoutMs: integer(100).default(5000),
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
  logLevel
}).transform(config => config.mode === 'relay-only'
  ? { ...config, natTraversal: { ...config.natTraversal, enabled: false } }
  : config)

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
  gatewayDialTimeoutMs?: number | string
  /** comma-separated or repeated (`--station` on the command line) */
  stations?: string | string[]
  stationTtlMs?: number | string
  maxGateways?: number | string
  gatewayDiscoveryIntervalMs?: number | string
  reconnectInitialDelayMs?: number | string
  reconnectMaxDelayMs?: number | string
  /** "host:port" of the status API */
  api?: string
  identityFile?: string
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
  gatewayDialTimeoutMs: { path: ['gatewayDialTimeoutMs'], kind: 'integer' },
  stations: { path: ['stations'], kind: 'list' },
  stationTtlMs: { path: ['stationTtlMs'], kind: 'integer' },
  maxGateways: { path: ['maxGateways'], kind: 'integer' },
  gatewayDiscoveryIntervalMs: { path: ['gatewayDiscoveryIntervalMs'], kind: 'integer' },
  reconnectInitialDelayMs: { path: ['reconnect', 'initialDelayMs'], kind: 'integer' },
  reconnectMaxDelayMs: { path: ['reconnect', 'maxDelayMs'], kind: 'integer' },
  api: { path: ['api'], kind: 'hostPort' },
  identityFile: { path: ['identityFile'], kind: 'string' },
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
