/**
 * The failures natmesh reports to its user, after hyperdht's lib/errors.js: one error class whose `code` names
 * the failure, so the CLI, tests and programs using natmesh match on the code, never on the message.
 *
 * - INVALID_CONFIG: settings that do not validate (a ConfigError, which lists each with where it came from).
 * - IDENTITY_FILE: the identity key file exists but cannot be used (unreadable, not a regular file, readable by
 *   others, not a key), or cannot be created.
 * - TURN_SECRET_FILE: the same, for the gateway's TURN secret file.
 * - TURN_UNAVAILABLE: coturn cannot run here (no binary) or never came up.
 * - INVALID_ICE_SERVERS_RESPONSE: a gateway answered, but not with a usable ICE servers list.
 * - INVALID_STATION_RECORD: a station record that fails its checks (signature, name, owner, size).
 * - RESERVATION_REFUSED: the gateway answered a relay reservation with a status other than OK.
 * - INVALID_TARGET: a target that is neither a multiaddr, a peer id nor `station:<name>`.
 * - NO_GATEWAY: a peer id target, but we are connected to no gateway to reach it through.
 * - STATION_NOT_FOUND / STATION_WITHDRAWN / STATION_OFFLINE: the station lookup found no record, a withdrawn one,
 *   or one that lists no gateway at the moment.
 * - NOT_CONNECTED: an operation on a peer we hold no connection to.
 *
 * Hole-punch outcomes have codes of their own (HolePunchCode in src/dcutr), carried in `hole-punch` events.
 */
export type NatmeshErrorCode =
  | 'INVALID_CONFIG' | 'IDENTITY_FILE' | 'TURN_SECRET_FILE' | 'TURN_UNAVAILABLE' | 'INVALID_ICE_SERVERS_RESPONSE'
  | 'INVALID_STATION_RECORD' | 'RESERVATION_REFUSED' | 'INVALID_TARGET' | 'NO_GATEWAY' | 'STATION_NOT_FOUND'
  | 'STATION_WITHDRAWN' | 'STATION_OFFLINE' | 'NOT_CONNECTED'

/** `Code` is open so that a protocol can type its own codes (a hole punch's, say) on the same class */
export class NatmeshError<Code extends string = NatmeshErrorCode> extends Error {
  override name = 'NatmeshError'

  constructor (readonly code: Code, message: string, options?: ErrorOptions) {
    super(message, options)
  }
}
