/**
 * @packageDocumentation
 *
 * natmesh's session layer: a session is a message channel to one peer that outlives the connections under it.
 * It starts on whatever connection there is (usually relayed), moves to a direct one when a hole punch opens
 * it, and resumes on another after a loss, without losing or repeating a message (sequence numbers, cumulative
 * acks and a resend buffer, over `/natmesh/session/1.0.0` streams; see frames.ts).
 *
 * This is NOT libp2p's connection upgrader (the `Upgrader` that adds encryption and a muxer to a raw
 * connection): "upgrade" here means moving a session from a relayed path to a direct one, above libp2p.
 *
 * session-manager.ts opens, accepts, migrates and resumes sessions; session.ts is one session, its lifecycle
 * in session-state.ts and its time rules in session-timing.ts; sender.ts and send-buffer.ts are the send side,
 * message-queue.ts and ack-schedule.ts the receive side; carrier.ts is one stream carrying a session's frames.
 */
export { SessionManager } from './session-manager.js'
export type { SessionHandler, SessionManagerInit, SessionTotals } from './session-manager.js'
export { Session, SessionError, sessionDefaults } from './session.js'
export type { SessionEvents, SessionOptions, SessionState, SessionStats } from './session.js'
export { SESSION_PROTOCOL } from './carrier.js'
