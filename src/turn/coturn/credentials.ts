import { createHmac } from 'node:crypto'

/** A TURN REST API credential (draft-uberti-behave-turn-rest, coturn's `use-auth-secret`) */
export interface TurnCredential {
  /** `<expiry unix seconds>:<identity>` */
  username: string
  /** base64(HMAC-SHA1(secret, username)) */
  credential: string
  /** unix seconds; coturn refuses the credential after this */
  expiresAt: number
}

export interface MintInit {
  secret: string
  /** who the credential is for: a peer id (from Noise) or an API client's label; must not contain ':' */
  identity: string
  ttlSeconds: number
  /** ms since the epoch; default now */
  now?: number
}

/**
 * Mints a time-limited TURN credential. coturn recomputes the HMAC from the username and its copy of the secret,
 * so nothing is stored: the credential is valid until the expiry written into the username.
 */
export function mintTurnCredential (init: MintInit): TurnCredential {
  if (init.identity === '' || init.identity.includes(':')) {
    throw new Error(`a TURN identity must be non-empty and free of ":", got ${JSON.stringify(init.identity)}`)
  }

  const expiresAt = Math.floor((init.now ?? Date.now()) / 1000) + init.ttlSeconds
  const username = `${expiresAt}:${init.identity}`
  const credential = createHmac('sha1', init.secret).update(username).digest('base64')

  return { username, credential, expiresAt }
}

/** the expiry (unix seconds) a credential's username carries; undefined for a username not in that form */
export function expiryOf (username: string): number | undefined {
  const match = /^(\d+):/.exec(username)
  return match == null ? undefined : Number(match[1])
}

/** the identity (a peer id, or "http-api") a credential's username names; undefined for a username not in that form */
export function identityOf (username: string): string | undefined {
  return /^\d+:(.+)$/.exec(username)?.[1]
}
