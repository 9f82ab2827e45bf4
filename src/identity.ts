import { randomBytes } from 'node:crypto'
import { link, mkdir, open, rm, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId, PrivateKey } from '@libp2p/interface'

export interface Identity {
  privateKey: PrivateKey
  peerId: PeerId
  /** true when this call generated the key (first start) */
  created: boolean
}

/** A key file that exists but cannot be used; the file is never modified */
export class IdentityError extends Error {
  constructor (message: string, options?: ErrorOptions) {
    super(message, options)
    this.name = 'IdentityError'
  }
}

/**
 * Loads the node's private key from `path`, or creates an Ed25519 key there on first start.
 * The file holds the libp2p protobuf encoding of the key and must be readable by its owner only.
 */
export async function loadOrCreateIdentity (path: string): Promise<Identity> {
  const existing = await readKeyFile(path)

  if (existing != null) {
    return { ...keyFrom(existing, path), created: false }
  }

  const privateKey = await generateKeyPair('Ed25519')

  if (await publishKeyFile(path, privateKeyToProtobuf(privateKey))) {
    return { privateKey, peerId: peerIdFromPrivateKey(privateKey), created: true }
  }

  // another process created the file between our read and our write: use its key, so both agree on the identity
  const winner = await readKeyFile(path)
  if (winner == null) {
    throw new IdentityError(`Identity file ${path} disappeared while it was being created`)
  }
  return { ...keyFrom(winner, path), created: false }
}

/** the file's bytes, or undefined when there is no file yet */
async function readKeyFile (path: string): Promise<Uint8Array | undefined> {
  let file
  try {
    file = await open(path, 'r')
  } catch (err: any) {
    if (err.code === 'ENOENT') {
      return undefined
    }
    throw new IdentityError(`Cannot open identity file ${path}: ${err.message}`, { cause: err })
  }

  try {
    // check the opened file, not the path, so the file cannot be swapped between the check and the read
    const stats = await file.stat()

    if (!stats.isFile()) {
      throw new IdentityError(`Identity file ${path} is not a regular file`)
    }

    const mode = stats.mode & 0o777
    if ((mode & 0o077) !== 0) {
      throw new IdentityError(
        `Permissions 0${mode.toString(8)} for identity file ${path} are too open: ` +
        `a private key must be readable by its owner only. Fix it with: chmod 600 '${path}'`
      )
    }

    return await file.readFile()
  } finally {
    await file.close()
  }
}

function keyFrom (bytes: Uint8Array, path: string): Omit<Identity, 'created'> {
  let privateKey: PrivateKey
  try {
    privateKey = privateKeyFromProtobuf(bytes)
  } catch (err: any) {
    throw new IdentityError(
      `Identity file ${path} is not a valid libp2p private key (${err.message}). ` +
      'It was left untouched: restore it, or move it away to start with a new identity (and a new peer id).',
      { cause: err }
    )
  }

  return { privateKey, peerId: peerIdFromPrivateKey(privateKey) }
}

/**
 * Writes the key to a temporary file (0600) and hard-links it into place: unlike rename, link fails when `path`
 * already exists, so of two processes creating the same identity exactly one wins, and nobody ever reads a
 * half-written key. Returns false if another process won.
 */
async function publishKeyFile (path: string, bytes: Uint8Array): Promise<boolean> {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`

  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 })
    await writeFile(temporary, bytes, { flag: 'wx', mode: 0o600, flush: true })
    await link(temporary, path)
    return true
  } catch (err: any) {
    if (err.code === 'EEXIST') {
      return false
    }
    throw new IdentityError(`Cannot create identity file ${path}: ${err.message}`, { cause: err })
  } finally {
    // the key now lives at `path` (or was not needed); a leftover temporary copy is only clutter
    await rm(temporary, { force: true })
  }
}
