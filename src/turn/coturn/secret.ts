import { randomBytes } from 'node:crypto'
import { loadOrCreatePrivateFile } from '../../core/private-file.js'
import type { PrivateFile } from '../../core/private-file.js'
import { NatmeshError } from '../../core/errors.js'

const MIN_SECRET_LENGTH = 16

export interface TurnSecret {
  secret: string
  /** true when this call generated the secret and wrote it to the file */
  created: boolean
}

/**
 * The shared secret coturn checks credentials with: read from `path`, or generated (32 random bytes, base64url)
 * and written there with mode 0600 on first start, so credentials stay valid across gateway restarts.
 */
export async function loadOrCreateTurnSecret (path: string): Promise<TurnSecret> {
  const secretFile: PrivateFile = { path, label: 'TURN secret file', code: 'TURN_SECRET_FILE' }
  const { value: secret, created } = await loadOrCreatePrivateFile(secretFile, {
    parse: bytes => secretFrom(bytes, path),
    create: async () => {
      const secret = randomBytes(32).toString('base64url')
      return { value: secret, bytes: new TextEncoder().encode(secret + '\n') }
    }
  })
  return { secret, created }
}

function secretFrom (bytes: Uint8Array, path: string): string {
  const secret = new TextDecoder().decode(bytes).trim()

  // coturn reads the secret from a config line: it must be one line of printable characters
  if (secret.length < MIN_SECRET_LENGTH || !/^[\x21-\x7e]+$/.test(secret)) {
    throw new NatmeshError('TURN_SECRET_FILE',
      `TURN secret file ${path} must hold one line of at least ${MIN_SECRET_LENGTH} printable characters without spaces. ` +
      'It was left untouched: fix it, or move it away to have a new secret generated.'
    )
  }

  return secret
}
