import { publicKeyFromProtobuf, publicKeyToProtobuf } from '@libp2p/crypto/keys'
import { peerIdFromPublicKey } from '@libp2p/peer-id'
import { multiaddr } from '@multiformats/multiaddr'
import { z } from 'zod'
import type { PrivateKey } from '@libp2p/interface'
import { NatmeshError } from '../core/errors.js'
import '../transport/multiaddr.js' // registers /udx: relay addresses may run over the UDP overlay

/**
 * A station record: where a named station can be reached (its relay addresses on every gateway holding a
 * reservation for it), signed by the key of the peer that runs it. Stored in the gateways' DHT under
 * `/natmesh-station/<name>`.
 */

/** the DHT key namespace: kad-dht picks validators and selectors by the key's first path segment */
export const STATION_NAMESPACE = 'natmesh-station'
/** signatures cover this prefix too, so a station signature can't be passed off as anything else */
const SIGNING_DOMAIN = new TextEncoder().encode('natmesh-station-record/v1\n')
/** a record lives at most this long: an owner that vanishes without withdrawing is forgotten within a day */
export const MAX_RECORD_TTL_MS = 24 * 60 * 60_000
const MAX_RECORD_BYTES = 4096
const MAX_RELAY_ADDRS = 32

/** DNS-label-like: readable on a command line, no separators that could be confused with key paths */
const NAME_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/
export const STATION_NAME_RULES = '1-63 characters: lowercase letters, digits and inner hyphens'

export function isStationName (name: string): boolean {
  return NAME_PATTERN.test(name)
}

export function assertStationName (name: string): void {
  if (!isStationName(name)) throw new Error(`invalid station name ${JSON.stringify(name)}: ${STATION_NAME_RULES}`)
}

export interface StationRecord {
  name: string
  peerId: string
  /** `/…/p2p/<gateway>/p2p-circuit/p2p/<peerId>`, over all of the owner's gateways */
  relayAddrs: string[]
  /** the owner's peer mode (relay-only, opportunistic, …), so a dialer knows whether to expect a hole punch */
  mode: string
  /** grows with every publication; the newest record of an owner wins */
  seq: number
  /** ms since the epoch */
  expiresAt: number
  /** a withdrawal (clean shutdown): the name points nowhere until this record expires */
  withdrawn: boolean
}

const payloadSchema = z.strictObject({
  name: z.string().regex(NAME_PATTERN),
  peerId: z.string(),
  relayAddrs: z.array(z.string()).max(MAX_RELAY_ADDRS),
  mode: z.string().max(32),
  seq: z.number().int().nonnegative(),
  expiresAt: z.number().int().positive(),
  withdrawn: z.boolean()
})

const envelopeSchema = z.strictObject({
  payload: z.base64url(),
  publicKey: z.base64url(),
  signature: z.base64url()
})

export function stationKey (name: string): Uint8Array {
  assertStationName(name)
  return new TextEncoder().encode(`/${STATION_NAMESPACE}/${name}`)
}

/** the station name in a DHT key, or undefined when the key is not a station key */
export function nameOfKey (key: Uint8Array): string | undefined {
  const match = /^\/natmesh-station\/(.+)$/.exec(new TextDecoder().decode(key))
  return match?.[1] != null && isStationName(match[1]) ? match[1] : undefined
}

export async function signStationRecord (record: StationRecord, privateKey: PrivateKey): Promise<Uint8Array> {
  const payload = new TextEncoder().encode(JSON.stringify(record))
  const signature = await privateKey.sign(signedBytes(payload))
  return new TextEncoder().encode(JSON.stringify({
    payload: Buffer.from(payload).toString('base64url'),
    publicKey: Buffer.from(publicKeyToProtobuf(privateKey.publicKey)).toString('base64url'),
    signature: Buffer.from(signature).toString('base64url')
  }))
}

/**
 * Checks everything a record claims: the key names its station, the signature is by the key of the peer id in
 * it, it has not expired and doesn't claim to live longer than MAX_RECORD_TTL_MS, every address leads to that
 * peer. @throws {NatmeshError} INVALID_STATION_RECORD
 */
export async function verifyStationRecord (key: Uint8Array, value: Uint8Array, now = Date.now()): Promise<StationRecord> {
  const fail = (why: string): never => { throw new NatmeshError('INVALID_STATION_RECORD', why) }
  if (value.byteLength > MAX_RECORD_BYTES) fail(`record of ${value.byteLength} bytes exceeds ${MAX_RECORD_BYTES}`)
  const name = nameOfKey(key) ?? fail('not a station key')
  const envelope = envelopeSchema.safeParse(parseJson(value))
  if (!envelope.success) return fail('malformed envelope')
  const payload = Buffer.from(envelope.data.payload, 'base64url')
  const parsed = payloadSchema.safeParse(parseJson(payload))
  if (!parsed.success) return fail('malformed record')
  const record = parsed.data
  if (record.name !== name) fail(`record is for station ${record.name}, not ${name}`)
  let publicKey
  try {
    publicKey = publicKeyFromProtobuf(Buffer.from(envelope.data.publicKey, 'base64url'))
  } catch {
    return fail('malformed public key')
  }
  if (peerIdFromPublicKey(publicKey).toString() !== record.peerId) fail('record names a peer other than its signer')
  if (!await publicKey.verify(signedBytes(payload), Buffer.from(envelope.data.signature, 'base64url'))) fail('bad signature')
  if (record.expiresAt <= now) fail('record expired')
  if (record.expiresAt > now + MAX_RECORD_TTL_MS) fail('record claims to live longer than allowed')
  for (const address of record.relayAddrs) {
    let last
    try {
      last = multiaddr(address).getComponents().at(-1)
    } catch {
      return fail(`malformed address ${address}`)
    }
    if (last?.name !== 'p2p' || last.value !== record.peerId) fail(`address ${address} does not lead to ${record.peerId}`)
  }
  return record
}

function signedBytes (payload: Uint8Array): Uint8Array {
  const bytes = new Uint8Array(SIGNING_DOMAIN.byteLength + payload.byteLength)
  bytes.set(SIGNING_DOMAIN)
  bytes.set(payload, SIGNING_DOMAIN.byteLength)
  return bytes
}

function parseJson (bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes))
  } catch {
    return undefined
  }
}

/**
 * Of several valid records for one name (answers of different gateways), the one to believe: the owner most
 * gateways agree on (gateways refuse a second owner while a claim lives, so a different owner on a minority of
 * gateways is a hijack attempt that slipped past one of them), then that owner's newest record. Undefined
 * entries (invalid records) never win; -1 when there is no valid record at all.
 */
export function bestStationRecord (records: Array<StationRecord | undefined>): number {
  const votes = new Map<string, number>()
  for (const record of records) if (record != null) votes.set(record.peerId, (votes.get(record.peerId) ?? 0) + 1)
  let best = -1
  for (const [i, record] of records.entries()) {
    if (record == null) continue
    const current = records[best]
    if (current == null) { best = i; continue }
    const byVotes = (votes.get(record.peerId) ?? 0) - (votes.get(current.peerId) ?? 0)
    if (byVotes > 0 || (byVotes === 0 && record.peerId === current.peerId && newer(record, current))) best = i
  }
  return best
}

function newer (a: StationRecord, b: StationRecord): boolean {
  return a.seq !== b.seq ? a.seq > b.seq : a.expiresAt > b.expiresAt
}
