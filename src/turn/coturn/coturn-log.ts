import type { Logger } from '../../core/logging.js'

/** `12: : message` or `12: session 001: message`: seconds since start, an optional context, the message */
const PREFIX = /^\d+: [^:]*: ?/

/**
 * Feeds coturn's output into the gateway's logger, one record per line. coturn is chatty (a banner, one line
 * per session event), so only its own errors and warnings keep their level; refused credentials are info, the
 * rest goes to debug.
 */
export function logCoturnLine (logger: Logger, raw: string): void {
  const message = raw.replace(PREFIX, '').trim()

  if (message === '' || /^=+$/.test(message)) {
    return
  }

  if (/check_stun_auth/.test(message)) {
    // a refused credential (expired, forged): the client's problem, not coturn's
    logger.info(message)
  } else if (/^(ERROR|CONFIG ERROR|CONFIGURATION ALERT|FATAL)\b/i.test(message) || /cannot bind|Address already in use/i.test(message)) {
    logger.error(message)
  } else if (/^WARNING\b/i.test(message)) {
    logger.warn(message)
  } else {
    logger.debug(message)
  }
}
