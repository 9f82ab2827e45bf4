import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { NatmeshError } from '../../src/core/errors.js'
import { loadOrCreateIdentity } from '../../src/core/identity.js'

let dir: string

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'natmesh-identity-'))
})

afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

describe('loadOrCreateIdentity', () => {
  it('creates an Ed25519 key in a private directory and file, then reloads the same peer id', async () => {
    const keyDir = join(dir, 'state', '.natmesh')
    const path = join(keyDir, 'gateway.key')

    const first = await loadOrCreateIdentity(path)
    expect(first.created).toBe(true)
    expect(first.privateKey.type).toBe('Ed25519')
    expect(first.peerId.toString()).toMatch(/^12D3KooW/)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect((await stat(keyDir)).mode & 0o777).toBe(0o700)
    expect(await readdir(keyDir)).toEqual(['gateway.key']) // no temporary file left behind

    const second = await loadOrCreateIdentity(path)
    expect(second.created).toBe(false)
    expect(second.peerId.equals(first.peerId)).toBe(true)
    expect(second.privateKey.equals(first.privateKey)).toBe(true)
  })

  it('gives concurrent creators one identity', async () => {
    const path = join(dir, 'peer.key')
    const identities = await Promise.all(Array.from({ length: 8 }, async () => loadOrCreateIdentity(path)))

    expect(new Set(identities.map(identity => identity.peerId.toString())).size).toBe(1)
    expect(identities.filter(identity => identity.created)).toHaveLength(1)
    expect(await readdir(dir)).toEqual(['peer.key'])
  })

  it('refuses a key file others can read, and says how to fix it', async () => {
    const path = join(dir, 'peer.key')
    const { peerId } = await loadOrCreateIdentity(path)
    await chmod(path, 0o644)

    const err = await loadOrCreateIdentity(path).catch((err: unknown) => err)
    expect(err).toBeInstanceOf(NatmeshError)
    expect(err).toMatchObject({ code: 'IDENTITY_FILE' })
    expect((err as Error).message).toContain(`Permissions 0644 for identity file ${path} are too open`)
    expect((err as Error).message).toContain(`chmod 600 '${path}'`)

    await chmod(path, 0o600)
    expect((await loadOrCreateIdentity(path)).peerId.equals(peerId)).toBe(true)
  })

  it('names a corrupt file and never overwrites it', async () => {
    const path = join(dir, 'peer.key')
    await writeFile(path, 'not a key', { mode: 0o600 })

    await expect(loadOrCreateIdentity(path)).rejects.toThrow(`Identity file ${path} is not a valid libp2p private key`)
    expect(await readFile(path, 'utf8')).toBe('not a key')
  })

  it('treats an empty file as corrupt, not as missing', async () => {
    const path = join(dir, 'peer.key')
    await writeFile(path, '', { mode: 0o600 })

    await expect(loadOrCreateIdentity(path)).rejects.toMatchObject({ code: 'IDENTITY_FILE' })
    expect((await stat(path)).size).toBe(0)
  })

  it('refuses a directory in place of the key file', async () => {
    await expect(loadOrCreateIdentity(dir)).rejects.toThrow(`Identity file ${dir} is not a regular file`)
  })
})
