import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { PrivateKey } from '@libp2p/interface'
import { beforeAll, describe, expect, it } from 'vitest'
import { StationClaims } from '../../src/stations/claims.js'
import { bestStationRecord, isStationName, MAX_RECORD_TTL_MS, signStationRecord, stationKey, verifyStationRecord } from '../../src/stations/record.js'
import type { StationRecord } from '../../src/stations/record.js'

const GATEWAY = '12D3KooWCT5HQLPbwZjtn68DyhX6tDZoVFDjYdMLf3L4fWVjmzkW'

function recordOf (key: PrivateKey, patch: Partial<StationRecord> = {}): StationRecord {
  const peerId = peerIdFromPrivateKey(key).toString()
  return {
    name: 'printer',
    peerId,
    relayAddrs: [`/ip4/11.0.113.10/udp/4001/udx/p2p/${GATEWAY}/p2p-circuit/p2p/${peerId}`],
    mode: 'opportunistic',
    seq: 1,
    expiresAt: Date.now() + 60_000,
    withdrawn: false,
    ...patch
  }
}

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text)

describe('station records', () => {
  let owner: PrivateKey
  let other: PrivateKey
  beforeAll(async () => {
    owner = await generateKeyPair('Ed25519')
    other = await generateKeyPair('Ed25519')
  })

  it('names: lowercase letters, digits, inner hyphens, at most 63', () => {
    for (const good of ['a', 'printer', 'lab-3', 'x'.repeat(63)]) expect(isStationName(good)).toBe(true)
    for (const bad of ['', '-a', 'a-', 'Printer', 'a.b', 'a/b', 'x'.repeat(64), 'ü']) expect(isStationName(bad)).toBe(false)
    expect(() => stationKey('a/b')).toThrow(/invalid station name/)
  })

  it('a signed record verifies and round-trips', async () => {
    const record = recordOf(owner)
    expect(await verifyStationRecord(stationKey('printer'), await signStationRecord(record, owner))).toEqual(record)
  })

  it('refuses a record for another name, by another key, tampered, expired, too long-lived, or pointing elsewhere', async () => {
    const key = stationKey('printer')
    const cases: Array<[string, Promise<Uint8Array> | Uint8Array, RegExp]> = [
      ['other name', signStationRecord(recordOf(owner), owner).then(value => value), /not a station key|for station/],
      ['signed by a key not its own', signStationRecord(recordOf(owner), other), /other than its signer/],
      ['expired', signStationRecord(recordOf(owner, { expiresAt: Date.now() - 1 }), owner), /expired/],
      ['too long-lived', signStationRecord(recordOf(owner, { expiresAt: Date.now() + MAX_RECORD_TTL_MS + 60_000 }), owner), /longer than allowed/],
      ['address to another peer', signStationRecord(recordOf(owner, { relayAddrs: [`/ip4/11.0.113.10/tcp/4001/p2p/${GATEWAY}/p2p-circuit/p2p/${GATEWAY}`] }), owner), /does not lead to/],
      ['not JSON', bytes('{"payload":'), /malformed envelope/],
      ['extra fields', bytes(JSON.stringify({ payload: 'e30', publicKey: 'AA', signature: 'AA', more: 1 })), /malformed envelope/],
      ['huge', new Uint8Array(5000), /exceeds/]
    ]
    for (const [what, value, error] of cases) {
      const targetKey = what === 'other name' ? stationKey('scanner') : key
      await expect(verifyStationRecord(targetKey, await value), what).rejects.toThrow(error)
    }
    // the payload swapped after signing
    const envelope = JSON.parse(new TextDecoder().decode(await signStationRecord(recordOf(owner), owner))) as { payload: string }
    envelope.payload = Buffer.from(JSON.stringify(recordOf(owner, { seq: 99 }))).toString('base64url')
    await expect(verifyStationRecord(key, bytes(JSON.stringify(envelope)))).rejects.toMatchObject({ code: 'INVALID_STATION_RECORD', message: expect.stringMatching(/bad signature/) })
  })

  it('of several records, believes the owner most answers agree on, then its newest', () => {
    const a = recordOf(owner)
    const b = { ...a, peerId: 'someone-else', seq: 1000 }
    expect(bestStationRecord([b, a, { ...a, seq: 2 }])).toBe(2)
    expect(bestStationRecord([undefined, b, undefined])).toBe(1)
    expect(bestStationRecord([undefined])).toBe(-1)
  })
})

describe('station name claims (first come, first served)', () => {
  const record = (peerId: string, patch: Partial<StationRecord> = {}): StationRecord =>
    ({ name: 'printer', peerId, relayAddrs: [], mode: 'opportunistic', seq: 1, expiresAt: Date.now() + 60_000, withdrawn: false, ...patch })

  it('holds a name for its first owner until it is withdrawn or expires', () => {
    const claims = new StationClaims()
    claims.admit(record('alice'))
    expect(() => { claims.admit(record('mallory', { seq: 50 })) }).toThrow(/claimed by alice/)
    claims.admit(record('alice', { seq: 2 }))
    // a late, older copy of alice's record neither ends nor shortens her claim
    claims.admit(record('alice', { seq: 1, withdrawn: true }))
    expect(() => { claims.admit(record('mallory')) }).toThrow(/claimed by alice/)
    claims.admit(record('alice', { seq: 3, withdrawn: true }))
    claims.admit(record('mallory', { seq: 1 }))
    expect(() => { claims.admit(record('alice', { seq: 4 })) }).toThrow(/claimed by mallory/)
    const later = Date.now() + 120_000
    claims.admit(record('alice', { seq: 5, expiresAt: later + 60_000 }), later)
  })
})
