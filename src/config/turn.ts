import { isIP } from 'node:net'
import { z } from 'zod'
import { integer, ipAddress, port, webOrigin } from './fields.js'

/**
 * Peer addresses coturn refuses to relay to unless `allowedPeerIps` says otherwise: the special-purpose
 * ranges (loopback, RFC 1918, CGNAT, link-local, documentation, multicast/reserved, ULA), so a TURN
 * credential cannot be used to reach the gateway's own LAN. coturn's own recommended list.
 */
export const DEFAULT_DENIED_PEER_IPS = [
  '0.0.0.0-0.255.255.255',
  '10.0.0.0-10.255.255.255',
  '100.64.0.0-100.127.255.255',
  '127.0.0.0-127.255.255.255',
  '169.254.0.0-169.254.255.255',
  '172.16.0.0-172.31.255.255',
  '192.0.0.0-192.0.0.255',
  '192.0.2.0-192.0.2.255',
  '192.88.99.0-192.88.99.255',
  '192.168.0.0-192.168.255.255',
  '198.18.0.0-198.19.255.255',
  '198.51.100.0-198.51.100.255',
  '203.0.113.0-203.0.113.255',
  '224.0.0.0-255.255.255.255',
  '::1',
  '64:ff9b::-64:ff9b::ffff:ffff',
  '::ffff:0.0.0.0-::ffff:255.255.255.255',
  'fc00::-fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff',
  'fe80::-febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff'
]

/** coturn's peer-ip syntax: one address or `first-last` of one family */
const ipRange = z.string().refine(value => {
  const [first, last, ...rest] = value.split('-')
  if (rest.length > 0 || first == null) return false
  const family = isIP(first)
  return family !== 0 && (last == null || isIP(last) === family)
}, 'expected an IP address or a range "first-last"')

/** The TURN server (coturn) the gateway runs and supervises, and the credentials it mints for it */
export const turnConfigSchema = z.strictObject({
  /** off by default: a gateway needs coturn installed and a public address for TURN to be useful */
  enabled: z.boolean().default(false),
  /** refuse to start when coturn cannot run; otherwise the gateway runs without TURN and logs why */
  required: z.boolean().default(false),
  /** coturn's executable, looked up on PATH */
  binary: z.string().min(1).default('turnserver'),
  /** UDP and TCP; 3478 belongs to natmesh's own STUN server */
  port: port.min(1).default(3480),
  /** where coturn listens; default the gateway's `host` (all interfaces for 0.0.0.0) */
  listenIp: ipAddress.optional(),
  /** the address in the turn: URLs handed out (and coturn's external-ip); default the first `announce` address, else `listenIp` */
  externalIp: ipAddress.optional(),
  /** the shared secret credentials are signed with; prefer secretFile, which keeps it out of config files */
  secret: z.string().min(16, 'must be at least 16 characters').optional(),
  /** read the secret from here; created with a random secret (mode 0600) when absent */
  secretFile: z.string().min(1).default('./.natmesh/turn-secret'),
  /** coturn's generated config file, pid file and database go here */
  stateDir: z.string().min(1).default('./.natmesh/turn'),
  realm: z.string().regex(/^[\w.-]+$/, 'letters, digits, ".", "-" and "_" only').default('natmesh'),
  /** lifetime of a minted credential */
  ttlSeconds: integer(60).default(3600),
  /** how often the gateway ends allocations whose credential has expired (coturn itself checks only new ones) */
  expirySweepMs: integer(100).default(5000),
  /** UDP ports of relayed addresses */
  relayPortRange: z.strictObject({
    min: port.min(1).default(49152),
    max: port.min(1).default(65535)
  }).prefault({}).refine(range => range.min <= range.max, 'min must not exceed max'),
  deniedPeerIps: z.array(ipRange).default(DEFAULT_DENIED_PEER_IPS),
  /** exceptions to deniedPeerIps */
  allowedPeerIps: z.array(ipRange).default([]),
  /** restarts after coturn exits: the delay doubles from initial to max, and resets once it has run for a minute */
  restartDelayMs: z.strictObject({
    initial: integer(10).default(1000),
    max: integer(10).default(30_000)
  }).prefault({})
}).prefault({})

/** What GET /api/v1/ice/servers and /natmesh/ice-servers/1.0.0 hand out */
export const iceServersConfigSchema = z.strictObject({
  /** bearer token of the HTTP endpoint; without one the endpoint is off (the libp2p protocol needs none: Noise authenticates peers) */
  apiToken: z.string().min(16, 'must be at least 16 characters').optional(),
  /** web origins whose pages may call the HTTP endpoint cross-origin (CORS); none by default */
  corsOrigins: z.array(webOrigin).default([]),
  /** requests per client IP and window; more get 429 */
  rateLimit: z.strictObject({
    max: integer(1).default(30),
    windowMs: integer(100).default(60_000)
  }).prefault({}),
  /** the STUN port listed first (stun:<externalIp>:<port>) when the gateway's own STUN server is off (stun.enabled false): a STUN server run beside it; otherwise stun.port is listed */
  stunPort: port.min(1).default(3478),
  /** listed last, after the gateway's own servers, e.g. "stun:stun.l.google.com:19302"; none by default */
  publicStunUrls: z.array(z.string().regex(/^stuns?:[^\s]+$/, 'expected a stun: or stuns: URL')).default([])
}).prefault({})

export type TurnConfig = z.output<typeof turnConfigSchema>
export type IceServersConfig = z.output<typeof iceServersConfigSchema>
