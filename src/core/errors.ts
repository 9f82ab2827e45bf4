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
 *
 * Hole-punch outcomes have codes of their own (HolePunchCode in src/dcutr), carried in `hole-punch` events.
 */
export type NatmeshErrorCode =
  | 'INVALID_CONFIG' | 'IDENTITY_FILE' | 'TURN_SECRET_FILE' | 'TURN_UNAVAILABLE' | 'INVALID_ICE_SERVERS_RESPONSE'
  | 'INVALID_STATION_RECORD' | 'RESERVATION_REFUSED'

/** `Code` is open so that a protocol can type its own codes (a hole punch's, say) on the same class */
export class NatmeshError<Code extends string = NatmeshErrorCode> extends Error {
  override name = 'NatmeshError'

  constructor (readonly code: Code, message: string, options?: ErrorOptions) {
    super(message, options)
  }
}
