import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConfigError, loadGatewayConfig } from '../../src/config/index.js'
import { mintTurnCredential } from '../../src/turn/coturn/credentials.js'
import { loadOrCreateTurnSecret } from '../../src/turn/coturn/secret.js'

describe('TURN and ICE servers settings', () => {
  let dir: string

  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'natmesh-turn-config-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  async function issuesOf (yaml: string, env: Record<string, string> = {}): Promise<string[]> {
    const file = join(dir, 'gateway.yaml')
    await writeFile(file, yaml)
    const err = await loadGatewayConfig({ file, env, flags: {} }).catch((err: unknown) => err)
    expect(err).toBeInstanceOf(ConfigError)
    return (err as ConfigError).issues.map(issue => `${issue.path ?? ''}: ${issue.message} (${issue.source ?? 'default'})`)
  }

  it('defaults: TURN off on port 3480, 1 h credentials, private ranges denied but the lab\'s 11.0.113.0/24 not', async () => {
    const config = await loadGatewayConfig({ env: {}, flags: {} })
    expect(config.turn).toMatchObject({ enabled: false, required: false, binary: 'turnserver', port: 3480, ttlSeconds: 3600, realm: 'natmesh' })
    expect(config.turn.deniedPeerIps).toContain('10.0.0.0-10.255.255.255')
    expect(config.turn.deniedPeerIps).toContain('127.0.0.0-127.255.255.255')
    expect(config.turn.deniedPeerIps.some(range => range.startsWith('11.'))).toBe(false)
    expect(config.iceServers).toEqual({ corsOrigins: [], rateLimit: { max: 30, windowMs: 60_000 }, stunPort: 3478, publicStunUrls: [] })
  })

  it('takes the switches from the environment', async () => {
    const config = await loadGatewayConfig({ env: { NATMESH_TURN: 'true', NATMESH_TURN_PORT: '3490', NATMESH_ICE_API_TOKEN: 'a-long-enough-token' }, flags: {} })
    expect(config.turn.enabled).toBe(true)
    expect(config.turn.port).toBe(3490)
    expect(config.iceServers.apiToken).toBe('a-long-enough-token')
  })

  it('names each bad setting and where it came from', async () => {
    const issues = await issuesOf([
      'turn:',
      '  deniedPeerIps: [10.0.0.0-10.255.255.255, nope, 10.0.0.1-::1]',
      '  relayPortRange: { min: 60000, max: 50000 }',
      '  secret: short',
      'iceServers:',
      '  apiToken: short',
      '  publicStunUrls: [http://example.net]'
    ].join('\n'), { NATMESH_TURN_PORT: '0' })
    expect(issues).toEqual(expect.arrayContaining([
      expect.stringMatching(/^gateway\.turn\.deniedPeerIps\.1: expected an IP address or a range "first-last" \(.*gateway\.yaml:2\)$/),
      expect.stringMatching(/^gateway\.turn\.deniedPeerIps\.2: expected an IP address or a range/),
      expect.stringMatching(/^gateway\.turn\.relayPortRange: min must not exceed max/),
      expect.stringMatching(/^gateway\.turn\.secret: must be at least 16 characters/),
      expect.stringMatching(/^gateway\.turn\.port: expected a number >= 1 \(NATMESH_TURN_PORT\)$/),
      expect.stringMatching(/^gateway\.iceServers\.apiToken: must be at least 16 characters/),
      expect.stringMatching(/^gateway\.iceServers\.publicStunUrls\.0: expected a stun: or stuns: URL/)
    ]))
  })

  it('generates the TURN secret once, 0600, and refuses a file others can read or a useless one', async () => {
    const path = join(dir, 'sub', 'turn-secret')
    const first = await loadOrCreateTurnSecret(path)
    expect(first.created).toBe(true)
    expect((await stat(path)).mode & 0o777).toBe(0o600)
    expect(await loadOrCreateTurnSecret(path)).toEqual({ secret: first.secret, created: false })
    expect((await readFile(path, 'utf8')).trim()).toBe(first.secret)

    await chmod(path, 0o644)
    await expect(loadOrCreateTurnSecret(path)).rejects.toThrow(`Permissions 0644 for TURN secret file ${path} are too open`)

    await writeFile(path, 'too short\n', { mode: 0o600 })
    await chmod(path, 0o600)
    await expect(loadOrCreateTurnSecret(path)).rejects.toMatchObject({ name: 'NatmeshError', code: 'TURN_SECRET_FILE' })
  })

  it('mints `expiry:identity` usernames and refuses identities that would break the format', () => {
    const credential = mintTurnCredential({ secret: 's'.repeat(16), identity: 'peer', ttlSeconds: 3600, now: 1_000_000_000_000 })
    expect(credential.username).toBe('1000003600:peer')
    expect(credential.expiresAt).toBe(1_000_003_600)
    expect(Buffer.from(credential.credential, 'base64')).toHaveLength(20)
    expect(() => mintTurnCredential({ secret: 's'.repeat(16), identity: 'a:b', ttlSeconds: 60 })).toThrow(/free of ":"/)
  })
})
