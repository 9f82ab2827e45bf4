import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { ConfigError, loadGatewayConfig, loadPeerConfig } from '../../src/config/index.js'
import type { PeerFlags } from '../../src/config/index.js'

const GATEWAY_ID = '12D3KooWGsBbWvM9uYU8Yj8w6M12KxSt7SgymfCDikk7BE3bVBZ3'
const OTHER_ID = 'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N'
const GATEWAY = `/ip4/11.0.113.1/tcp/4001/p2p/${GATEWAY_ID}`

let dir: string

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'natmesh-config-'))
})

afterEach(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function yamlFile (text: string, name = 'natmesh.yaml'): Promise<string> {
  const file = join(dir, name)
  await writeFile(file, text)
  return file
}

async function configError (load: Promise<unknown>): Promise<ConfigError> {
  const err = await load.then(() => undefined, (err: unknown) => err)
  expect(err).toBeInstanceOf(ConfigError)
  expect(err).toMatchObject({ code: 'INVALID_CONFIG' })
  return err as ConfigError
}

describe('gateway config', () => {
  it('fills every default when nothing is given', async () => {
    await expect(loadGatewayConfig({ env: {}, flags: {} })).resolves.toEqual({
      host: '0.0.0.0',
      udpPort: 4001,
      tcpPort: 4001,
      announce: [],
      api: { host: '127.0.0.1', port: 8080, dashboard: false },
      bootstrap: [],
      identityFile: './.natmesh/gateway.key',
      relay: {
        maxReservations: 1024,
        reservationTtlMs: 7_200_000,
        reservationGraceMs: 10_000,
        maxCircuitsPerPeer: 16,
        circuitDurationMs: 600_000,
        circuitDataBytes: 67_108_864,
        allowlist: [],
        forwarding: true,
        // one relay worker per core but one, at most 4: none on a one-core machine
        workers: 0,
        workerPort: 0
      },
      admission: { connectionsPerIpPerSecond: 200, maxPendingConnections: 1024, maxPendingConnectionsPerIp: 128, maxPendingUdpSetupsPerIp: 64, udpSetupsPerIpPerSecond: 200 },
      stun: { enabled: true, port: 3478, otherPort: 3479, ratePerSecond: 100, burst: 200 },
      // every TURN and ICE servers default is checked in turn-config.test.ts
      turn: expect.objectContaining({ enabled: false, port: 3480 }),
      iceServers: expect.objectContaining({ stunPort: 3478, publicStunUrls: [] }),
      logLevel: 'info'
    })
  })

  it('takes the ICE servers CORS origins from flags and the environment, and refuses what is not an origin', async () => {
    const fromEnv = await loadGatewayConfig({ env: { NATMESH_ICE_CORS_ORIGIN: 'https://app.example.com, http://127.0.0.1:5173' }, flags: {} })
    expect(fromEnv.iceServers.corsOrigins).toEqual(['https://app.example.com', 'http://127.0.0.1:5173'])
    const fromFlags = await loadGatewayConfig({ env: {}, flags: { iceCorsOrigin: ['https://a.example', 'https://b.example'] } })
    expect(fromFlags.iceServers.corsOrigins).toEqual(['https://a.example', 'https://b.example'])
    expect((await loadGatewayConfig({ env: {}, flags: {} })).iceServers.corsOrigins).toEqual([])

    const err = await configError(loadGatewayConfig({ env: {}, flags: { iceCorsOrigin: ['https://app.example.com/', '*', 'ftp://x.example'] } }))
    expect(err.issues.map(issue => String(issue.path))).toEqual(['gateway.iceServers.corsOrigins.0', 'gateway.iceServers.corsOrigins.1', 'gateway.iceServers.corsOrigins.2'])
    expect(err.message).toContain('expected an origin like https://app.example.com')
  })

  it('takes STUN settings from flags and the environment, and checks them', async () => {
    const config = await loadGatewayConfig({
      env: { NATMESH_STUN_ALTERNATE_ADDRESS: '11.0.113.200', NATMESH_STUN_RATE_PER_SECOND: '0' },
      flags: { stun: false, stunPort: '5000', stunOtherPort: 5001 }
    })
    expect(config.stun).toEqual({ enabled: false, port: 5000, otherPort: 5001, alternateAddress: '11.0.113.200', ratePerSecond: 0, burst: 200 })
    const err = await configError(loadGatewayConfig({ env: {}, flags: { stunPort: 3478, stunOtherPort: 3478, stunAlternateAddress: 'gw.example', stunBurst: 0 } }))
    expect(err.issues.map(issue => `${issue.path}: ${issue.message}`).sort()).toEqual([
      'gateway.stun.alternateAddress: expected an IPv4 or IPv6 address',
      'gateway.stun.burst: expected a number >= 1',
      'gateway.stun.otherPort: must differ from stun.port'
    ])
  })

  it('takes bootstrap gateways, each with its peer id', async () => {
    expect((await loadGatewayConfig({ env: { NATMESH_BOOTSTRAP: GATEWAY }, flags: {} })).bootstrap).toEqual([GATEWAY])
    const err = await configError(loadGatewayConfig({ env: {}, flags: { bootstrap: ['/ip4/11.0.113.1/tcp/4001'] } }))
    expect(err.message).toContain('gateway.bootstrap.0: "/ip4/11.0.113.1/tcp/4001" must end with /p2p/<gateway peer id>')
  })

  it('takes flags over environment over file over defaults, per setting', async () => {
    const file = await yamlFile([
      'udpPort: 5001',
      'tcpPort: 5002',
      'announce: [11.0.113.1]',
      'relay:',
      '  maxReservations: 10',
      '  maxCircuitsPerPeer: 3',
      `  allowlist: [${GATEWAY_ID}]`
    ].join('\n'))

    const config = await loadGatewayConfig({
      file,
      env: { NATMESH_TCP_PORT: '6002', NATMESH_MAX_RESERVATIONS: '20', NATMESH_ANNOUNCE: '11.0.113.2, 2001:db8::1', NATMESH_API: '[::1]:0', NATMESH_DASHBOARD: 'true' },
      flags: { maxReservations: '30', logLevel: 'debug' }
    })

    expect(config.udpPort).toBe(5001) // file
    expect(config.tcpPort).toBe(6002) // env over file
    expect(config.relay.maxReservations).toBe(30) // flag over env over file
    expect(config.relay.maxCircuitsPerPeer).toBe(3) // file, sibling of overridden keys kept
    expect(config.relay.reservationTtlMs).toBe(7_200_000) // default
    expect(config.relay.allowlist).toEqual([GATEWAY_ID])
    expect(config.announce).toEqual(['11.0.113.2', '2001:db8::1'])
    expect(config.api).toEqual({ host: '::1', port: 0, dashboard: true }) // host:port and the dashboard switch side by side
    expect(config.logLevel).toBe('debug')
  })

  it('reads the file named by NATMESH_CONFIG, but an explicit file wins', async () => {
    const fromEnv = await yamlFile('udpPort: 1111', 'env.yaml')
    const explicit = await yamlFile('udpPort: 2222', 'explicit.yaml')

    expect((await loadGatewayConfig({ env: { NATMESH_CONFIG: fromEnv }, flags: {} })).udpPort).toBe(1111)
    expect((await loadGatewayConfig({ file: explicit, env: { NATMESH_CONFIG: fromEnv }, flags: {} })).udpPort).toBe(2222)
  })

  it('coerces numbers strictly', async () => {
    const err = await configError(loadGatewayConfig({ env: { NATMESH_UDP_PORT: '12abc' }, flags: { circuitDataBytes: '1e3' } }))

    expect(err.message).toContain('gateway.udpPort: expected an integer, got "12abc" (from NATMESH_UDP_PORT)')
    expect(err.message).toContain('gateway.relay.circuitDataBytes: expected an integer, got "1e3" (from --circuit-data-bytes)')
  })

  it('takes the relay workers and their first port from flags and the environment, and checks them', async () => {
    const config = await loadGatewayConfig({ env: { NATMESH_RELAY_WORKER_PORT: '5100' }, flags: { relayWorkers: '3' } })
    expect(config.relay).toMatchObject({ workers: 3, workerPort: 5100 })
    expect((await loadGatewayConfig({ env: {}, flags: { relayWorkers: '0' } })).relay.workers).toBe(0)
    // unset: none on ephemeral ports (a firewall would not pass them), one per core but one once the ports are named
    expect((await loadGatewayConfig({ env: {}, flags: {} })).relay.workers).toBe(0)
    expect((await loadGatewayConfig({ env: {}, flags: { relayWorkerPort: '5100' } })).relay.workers).toBe(Math.min(Math.max(availableParallelism() - 1, 0), 4))
    const err = await configError(loadGatewayConfig({ env: {}, flags: { relayWorkers: '-1', relayWorkerPort: '70000' } }))
    expect(err.issues.map(issue => issue.path)).toEqual(['gateway.relay.workers', 'gateway.relay.workerPort'])
  })

  it('rejects unknown keys with their path and line', async () => {
    const file = await yamlFile('udpPort: 4001\nrelay:\n  maxReservation: 5\nlogLevle: debug\n')
    const err = await configError(loadGatewayConfig({ file, env: {}, flags: {} }))

    expect(err.issues).toEqual([
      { path: 'gateway.relay.maxReservation', message: 'unknown setting', source: `${file}:3` },
      { path: 'gateway.logLevle', message: 'unknown setting', source: `${file}:4` }
    ])
  })

  it('lists every bad field at once, each with its source', async () => {
    const file = await yamlFile('host: not-an-ip\nannounce:\n  - 11.0.113.1\n  - 300.1.1.1\nrelay:\n  allowlist: [nope]\n')
    const err = await configError(loadGatewayConfig({
      file,
      env: { NATMESH_API: 'localhost' },
      flags: { udpPort: 70000, logLevel: 'loud' }
    }))

    expect(err.message.split('\n')).toEqual([
      'invalid gateway configuration:',
      '  gateway.api: expected "host:port" (IPv6 as "[::1]:port"), got "localhost" (from NATMESH_API)',
      `  gateway.host: expected an IPv4 or IPv6 address (from ${file}:1)`,
      '  gateway.udpPort: expected a number <= 65535 (from --udp-port)',
      `  gateway.announce.1: expected an IPv4 or IPv6 address (from ${file}:4)`,
      `  gateway.relay.allowlist.0: "nope" is not a valid peer id (from ${file}:6)`,
      '  gateway.logLevel: expected one of "fatal", "error", "warn", "info", "debug", "trace", "silent", got "loud" (from --log-level)'
    ])
  })

  it('names the file and line of a YAML syntax error', async () => {
    const file = await yamlFile('udpPort: 4001\nrelay:\n  allowlist: [a, b\nlogLevel: info\n')
    const err = await configError(loadGatewayConfig({ file, env: {}, flags: {} }))

    expect(err.message).toMatch(new RegExp(`^invalid gateway configuration:\\n {2}${file}:\\d+: `))
  })

  it('refuses a file that is not a mapping or cannot be read', async () => {
    const list = await yamlFile('- a\n- b\n')
    expect((await configError(loadGatewayConfig({ file: list, env: {}, flags: {} }))).message)
      .toContain(`${list}: expected a mapping of settings at the top level`)

    const missing = join(dir, 'missing.yaml')
    expect((await configError(loadGatewayConfig({ file: missing, env: {}, flags: {} }))).message)
      .toContain(`${missing}: cannot read config file (ENOENT)`)
  })

  it('treats an empty file as no settings', async () => {
    const file = await yamlFile('')
    expect((await loadGatewayConfig({ file, env: {}, flags: {} })).udpPort).toBe(4001)
  })
})

describe('peer config', () => {
  it('fills defaults around the required gateways', async () => {
    await expect(loadPeerConfig({ env: { NATMESH_GATEWAYS: GATEWAY }, flags: {} })).resolves.toEqual({
      gateways: [GATEWAY],
      mode: 'opportunistic',
      host: '0.0.0.0',
      udpPort: 0,
      tcpPort: 0,
      natTraversal: {
        enabled: true,
        holePunchTimeoutMs: 5000,
        holePunchRetries: 3,
        allowPrivateAddresses: false,
        preferDirect: true,
        fallbackToRelay: true,
        earlyDial: true,
        natMapping: 'auto',
        birthday: { enabled: true, sockets: 256, probesPerSecond: 1000, maxProbes: 4000, sprayIntervalMs: 1000, timeBudgetMs: 6000, attemptsPerPeerPerMinute: 3 }
      },
      stations: [],
      stationTtlMs: 600_000,
      maxGateways: 2,
      gatewayDiscoveryIntervalMs: 60_000,
      gatewayDialTimeoutMs: 5000,
      gatewayUdpRetryMs: 30_000,
      ice: { historyFile: './.natmesh/ice-strategy.json', natType: 'auto', servers: [] },
      reconnect: { initialDelayMs: 500, maxDelayMs: 30_000 },
      natDetection: { enabled: true, cacheMs: 300_000, stunPorts: [3478, 3479], timeoutMs: 1500 },
      identityFile: './.natmesh/peer.key',
      controlSocket: './.natmesh/peer.sock',
      logLevel: 'info'
    })
  })

  it('puts the control socket next to the identity file unless it is named or turned off', async () => {
    const load = async (flags: PeerFlags): Promise<unknown> => (await loadPeerConfig({ env: { NATMESH_GATEWAYS: GATEWAY }, flags })).controlSocket
    expect(await load({ identityFile: '/var/lib/natmesh/alpha.key' })).toBe('/var/lib/natmesh/alpha.sock')
    expect(await load({ identityFile: './id' })).toBe('./id.sock')
    expect(await load({ controlSocket: '/run/natmesh/peer.sock' })).toBe('/run/natmesh/peer.sock')
    expect(await load({ controlSocket: false })).toBe(false)
  })

  it('splits list flags given repeated and comma-separated alike', async () => {
    const config = await loadPeerConfig({ env: {}, flags: { gateways: [`${GATEWAY},${GATEWAY}`, GATEWAY], stunPorts: ['3478,3479'], stations: ['a', 'b,c'] } })
    expect(config.gateways).toEqual([GATEWAY, GATEWAY, GATEWAY])
    expect(config.natDetection.stunPorts).toEqual([3478, 3479])
    expect(config.stations).toEqual(['a', 'b', 'c'])
  })

  it('takes the NAT mapping and birthday punch bounds from flags and env, and checks them', async () => {
    const config = await loadPeerConfig({
      env: { NATMESH_GATEWAYS: GATEWAY, NATMESH_BIRTHDAY_SOCKETS: '64' },
      flags: { natMapping: 'sequential', natMappingDelta: '2', birthday: false, birthdayMaxProbes: '1000', birthdayTimeBudgetMs: '2000', birthdayProbesPerSecond: '500' }
    })
    expect(config.natTraversal).toMatchObject({
      natMapping: 'sequential',
      natMappingDelta: 2,
      birthday: { enabled: false, sockets: 64, maxProbes: 1000, timeBudgetMs: 2000, probesPerSecond: 500 }
    })
    const err = await configError(loadPeerConfig({ env: { NATMESH_GATEWAYS: GATEWAY }, flags: { natMapping: 'cone', birthdaySockets: '5000', natMappingDelta: '3' } }))
    expect(err.issues.map(issue => issue.path).sort()).toEqual(['peer.natTraversal.birthday.sockets', 'peer.natTraversal.natMapping'])
    const delta = await configError(loadPeerConfig({ env: { NATMESH_GATEWAYS: GATEWAY }, flags: { natMapping: 'random', natMappingDelta: '3' } }))
    expect(delta.message).toContain('peer.natTraversal.natMappingDelta: only applies with natMapping "sequential"')
  })

  it('takes NAT detection settings, STUN ports as a list, and checks them', async () => {
    const config = await loadPeerConfig({ env: { NATMESH_GATEWAYS: GATEWAY, NATMESH_STUN_PORTS: '5000, 5001' }, flags: { natDetection: false, natDetectionCacheMs: '60000' } })
    expect(config.natDetection).toEqual({ enabled: false, cacheMs: 60_000, stunPorts: [5000, 5001], timeoutMs: 1500 })
    const err = await configError(loadPeerConfig({ env: { NATMESH_GATEWAYS: GATEWAY }, flags: { stunPorts: ['3478', 'x'], natDetectionCacheMs: 5 } }))
    expect(err.issues.map(issue => `${issue.path}: ${issue.message}`).sort()).toEqual([
      'peer.natDetection.cacheMs: expected a number >= 1000',
      'peer.natDetection.stunPorts.1: expected a number, got "x"'
    ])
    expect((await configError(loadPeerConfig({ env: { NATMESH_GATEWAYS: GATEWAY }, flags: { stunPorts: ['1', '2', '3'] } }))).message)
      .toContain('peer.natDetection.stunPorts: expected the primary and the other STUN port')
  })

  it('takes station names from flags and the environment, and refuses names outside the rules', async () => {
    const config = await loadPeerConfig({ env: { NATMESH_GATEWAYS: GATEWAY, NATMESH_STATIONS: 'printer,lab-3' }, flags: { maxGateways: '3' } })
    expect(config.stations).toEqual(['printer', 'lab-3'])
    expect(config.maxGateways).toBe(3)
    const err = await configError(loadPeerConfig({ env: { NATMESH_GATEWAYS: GATEWAY }, flags: { stations: ['ok', 'Not.OK'], maxGateways: '0' } }))
    expect(err.message).toContain('peer.stations.1: a station name has 1-63 characters: lowercase letters, digits and inner hyphens')
    expect(err.message).toContain('peer.maxGateways: expected a number >= 1')
  })

  it('requires at least one gateway', async () => {
    const err = await configError(loadPeerConfig({ env: {}, flags: {} }))
    expect(err.message).toBe('invalid peer configuration:\n  peer.gateways: at least one gateway multiaddr is required')

    const file = await yamlFile('gateways: []\n')
    expect((await configError(loadPeerConfig({ file, env: {}, flags: {} }))).message)
      .toContain(`peer.gateways: at least one gateway multiaddr is required (from ${file}:1)`)
  })

  it('validates gateway multiaddrs and their peer ids', async () => {
    const err = await configError(loadPeerConfig({
      env: {},
      flags: { gateways: ['not/a/multiaddr', '/ip4/11.0.113.1/tcp/4001', '/ip4/11.0.113.1/tcp/4001/p2p/abc', GATEWAY] }
    }))

    expect(err.issues.map(issue => issue.path)).toEqual(['peer.gateways.0', 'peer.gateways.1', 'peer.gateways.2'])
    expect(err.issues[0]?.message).toMatch(/^"not\/a\/multiaddr" is not a valid multiaddr \(.+\)$/)
    expect(err.issues[1]?.message).toBe('"/ip4/11.0.113.1/tcp/4001" must end with /p2p/<gateway peer id>')
    expect(err.issues[2]?.message).toBe('"/ip4/11.0.113.1/tcp/4001/p2p/abc" ends with an invalid peer id')
    expect(err.issues.every(issue => issue.source === '--gateways')).toBe(true)
  })

  it('splits comma-separated gateways from the environment, UDP overlay addresses included', async () => {
    const second = `/ip4/11.0.113.2/udp/4001/udx/p2p/${OTHER_ID}`
    const config = await loadPeerConfig({ env: { NATMESH_GATEWAYS: `${GATEWAY},${second}` }, flags: {} })
    expect(config.gateways).toEqual([GATEWAY, second])
  })

  it('accepts ice mode with its history file and extra STUN servers, and rejects servers libjuice cannot use', async () => {
    const config = await loadPeerConfig({ env: { NATMESH_GATEWAYS: GATEWAY, NATMESH_MODE: 'ice', NATMESH_ICE_SERVERS: 'stun:11.0.113.9:3478,stun:stun.example.org' }, flags: { iceHistoryFile: '/tmp/h.json' } })
    expect(config.mode).toBe('ice')
    expect(config.ice).toEqual({ historyFile: '/tmp/h.json', natType: 'auto', servers: ['stun:11.0.113.9:3478', 'stun:stun.example.org'] })
    expect((await loadPeerConfig({ env: { NATMESH_GATEWAYS: GATEWAY }, flags: { iceNatType: 'symmetric' } })).ice.natType).toBe('symmetric')
    expect((await configError(loadPeerConfig({ env: { NATMESH_GATEWAYS: GATEWAY }, flags: { iceNatType: 'cone' } }))).message).toContain('peer.ice.natType')

    const file = await yamlFile(`gateways: ["${GATEWAY}"]\nmode: ice\nice:\n  servers:\n    - urls: turn:11.0.113.9:3480\n      username: u\n      credential: c\n`)
    expect((await loadPeerConfig({ file, env: {}, flags: {} })).ice.servers).toEqual([{ urls: 'turn:11.0.113.9:3480', username: 'u', credential: 'c' }])

    const tcp = await configError(loadPeerConfig({ env: { NATMESH_GATEWAYS: GATEWAY }, flags: { iceServers: 'turns:11.0.113.9:5349?transport=tcp' } }))
    expect(tcp.message).toContain('expected stun:host[:port] or turn:host[:port][?transport=udp]')

    const typo = await configError(loadPeerConfig({ env: { NATMESH_GATEWAYS: GATEWAY }, flags: { mode: 'relay' } }))
    expect(typo.message).toContain('peer.mode: expected one of "relay-only", "opportunistic", "ice", got "relay" (from --mode)')
  })

  it('reports the hole punch timeout with its path and env variable', async () => {
    const err = await configError(loadPeerConfig({ env: { NATMESH_GATEWAYS: GATEWAY, NATMESH_HOLE_PUNCH_TIMEOUT_MS: '50' }, flags: {} }))
    expect(err.message).toContain('peer.natTraversal.holePunchTimeoutMs: expected a number >= 100 (from NATMESH_HOLE_PUNCH_TIMEOUT_MS)')
  })

  it('maps flattened flags into nested settings, booleans strictly', async () => {
    const config = await loadPeerConfig({
      env: { NATMESH_GATEWAYS: GATEWAY, NATMESH_PREFER_DIRECT: 'false' },
      flags: { holePunchTimeoutMs: 250, holePunchRetries: '1', fallbackToRelay: false, earlyDial: false, allowPrivateAddresses: true, reconnectMaxDelayMs: '1000' }
    })
    expect(config.natTraversal).toMatchObject({ enabled: true, holePunchTimeoutMs: 250, holePunchRetries: 1, allowPrivateAddresses: true, preferDirect: false, fallbackToRelay: false, earlyDial: false })
    expect(config.reconnect).toEqual({ initialDelayMs: 500, maxDelayMs: 1000 })

    const err = await configError(loadPeerConfig({ env: { NATMESH_GATEWAYS: GATEWAY, NATMESH_NAT_TRAVERSAL: 'yes' }, flags: {} }))
    expect(err.message).toContain('peer.natTraversal.enabled: expected true or false, got "yes" (from NATMESH_NAT_TRAVERSAL)')
  })

  it('rejects a max reconnect delay below the initial one', async () => {
    const file = await yamlFile(`gateways: [${GATEWAY}]\nreconnect:\n  initialDelayMs: 5000\n  maxDelayMs: 1000\n`)
    const err = await configError(loadPeerConfig({ file, env: {}, flags: {} }))
    expect(err.message).toContain(`peer.reconnect.maxDelayMs: must be >= reconnect.initialDelayMs (from ${file}:4)`)
  })

  it('turns nat traversal off in relay-only mode', async () => {
    const file = await yamlFile(`gateways: [${GATEWAY}]\nmode: relay-only\nnatTraversal:\n  enabled: true\n`)
    const config = await loadPeerConfig({ file, env: {}, flags: {} })
    expect(config.mode).toBe('relay-only')
    expect(config.natTraversal.enabled).toBe(false)
  })

  it('reports a wrongly typed YAML value with its line', async () => {
    const file = await yamlFile(`gateways: [${GATEWAY}]\nnatTraversal:\n  holePunchTimeoutMs: "5000"\n  preferDirect: 1\n`)
    const err = await configError(loadPeerConfig({ file, env: {}, flags: {} }))
    expect(err.issues).toEqual([
      { path: 'peer.natTraversal.holePunchTimeoutMs', message: 'expected a number, got "5000"', source: `${file}:3` },
      { path: 'peer.natTraversal.preferDirect', message: 'expected true or false, got 1', source: `${file}:4` }
    ])
  })

  it('ignores empty environment variables', async () => {
    const config = await loadPeerConfig({ env: { NATMESH_GATEWAYS: GATEWAY, NATMESH_UDP_PORT: '' }, flags: {} })
    expect(config.udpPort).toBe(0)
  })
})
