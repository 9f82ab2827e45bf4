import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { loadOrCreatePrivateFile } from './private-file.js'
import type { PrivateFile } from './private-file.js'
import { NatmeshError } from './errors.js'

export interface Identity {
  privateKey: PrivateKey
  peerId: PeerId
  /** true when this call generated the key (first start) */
  created: boolean
}

/**
 * Loads the node's private key from `path`, or creates an Ed25519 key there on first start.
 * The file holds the libp2p protobuf encoding of the key and must be readable by its owner only.
 */
export async function loadOrCreateIdentity (path: string): Promise<Identity> {
  const keyFile: PrivateFile = { path, label: 'identity file', code: 'IDENTITY_FILE' }
  const { value, created } = await loadOrCreatePrivateFile(keyFile, {
    parse: bytes => keyFrom(bytes, path),
    create: async () => {
      const privateKey = await generateKeyPair('Ed25519')
      return { value: { privateKey, peerId: peerIdFromPrivateKey(privateKey) }, bytes: privateKeyToProtobuf(privateKey) }
    }
  })
  return { ...value, created }
}

function keyFrom (bytes: Uint8Array, path: string): Omit<Identity, 'created'> {
  let privateKey: PrivateKey
  try {
    privateKey = privateKeyFromProtobuf(bytes)
  } catch (err: any) {
    throw new NatmeshError('IDENTITY_FILE',
      `Identity file ${path} is not a valid libp2p private key (${err.message}). ` +
      'It was left untouched: restore it, or move it away to start with a new identity (and a new peer id).',
      { cause: err }
    )
  }

  return { privateKey, peerId: peerIdFromPrivateKey(privateKey) }
}
