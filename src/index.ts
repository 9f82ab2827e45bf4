/**
 * @packageDocumentation
 *
 * natmesh as a library: a gateway (relay, STUN, TURN credentials, DHT) and a peer daemon (reservations, hole
 * punches, sessions that move from relay to direct without losing a message). `import { … } from 'natmesh'` is the
 * public API; everything else under dist/ is internal and may change between releases.
 */
export { createGateway, Gateway } from './gateway/gateway.js'
export type { CreateGatewayOptions } from './gateway/gateway.js'
export { createPeer, NatmeshPeer } from './peer/peer.js'
export type { CreatePeerOptions, NatmeshPeerEvents } from './peer/peer.js'
export type { PeerEvent, PeerEventName } from './peer/events.js'
export type { OverlayTransport, Path } from './core/path.js'
export { ConfigError, loadGatewayConfig, loadPeerConfig, PEER_MODES } from './config/index.js'
export type { ConfigIssue, GatewayConfig, GatewayFlags, PeerConfig, PeerFlags, PeerMode } from './config/index.js'
export { IdentityError, loadOrCreateIdentity } from './core/identity.js'
export type { Identity } from './core/identity.js'
export { Session, SessionError } from './upgrade/session.js'
export type { SessionEvents, SessionOptions, SessionState, SessionStats } from './upgrade/session.js'
export type { SessionHandler } from './upgrade/session-manager.js'
export { createLogger, LOG_LEVELS } from './core/logging.js'
export type { Logger, LogLevel } from './core/logging.js'
