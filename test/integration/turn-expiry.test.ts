import { createSocket } from 'node:dgram'
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadGatewayConfig } from '../../src/config/index.js'
import { createGateway } from '../../src/gateway/gateway.js'
import type { Gateway } from '../../src/gateway/gateway.js'
import { mintTurnCredential } from '../../src/turn/coturn/credentials.js'
import { loadOrCreateIdentity } from '../../src/core/identity.js'
import { createLogger } from '../../src/core/logging.js'
import { TurnAllocation, TurnAllocationError } from '../../src/turn/client/allocate.js'
import { freeUdpTcpPort } from '../helpers/free-port.js'
import { scrape, valueOf } from '../helpers/prometheus.js'
import { waitFor } from '../helpers/wait-for.js'

/** loopback answers in well under a millisecond; this only bounds a lost datagram */
const PROBE = { rtoMs: 200, retransmissions: 3 }
const SWEEP_MS = 200
/** a peer IP coturn lets permissions be made for (loopback and private ranges are denied); nothing is sent to it */
const PEER_IP = '11.0.113.9'
const IDENTITY = '12D3KooWGsBbWvM9uYU8Yj8w6M12KxSt7SgymfCDikk7BE3bVBZ3'

describe('TURN credential expiry on existing allocations (real coturn on 127.0.0.1)', () => {
  let dir: string
  let gateway: Gateway
  let turnPort: number
  let secret: string
  const allocations: TurnAllocation[] = []

  const allocate = async (ttlSeconds: number): Promise<TurnAllocation> => {
    const credential = mintTurnCredential({ secret, identity: IDENTITY, ttlSeconds })
    const allocation = await TurnAllocation.open({ host: '127.0.0.1', port: turnPort, ...credential }, PROBE)
    allocations.push(allocation)
    return allocation
  }
  /** whether coturn holds this relayed port: binding it fails while the allocation lives */
  const portHeld = async (port: number): Promise<boolean> => new Promise((resolve) => {
    const socket = createSocket('udp4')
    socket.once('error', () => { socket.close(); resolve(true) })
    socket.bind(port, '127.0.0.1', () => { socket.close(); resolve(false) })
  })
  const refusal = async (request: Promise<void>): Promise<number | undefined> => request.then(() => undefined, (err: unknown) => {
    if (err instanceof TurnAllocationError) return err.code
    throw err
  })

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'natmesh-turn-expiry-'))
    turnPort = await freeUdpTcpPort()
    const file = join(dir, 'gateway.yaml')
    await writeFile(file, `
turn:
  enabled: true
  required: true
  port: ${turnPort}
  stateDir: ${join(dir, 'turn')}
  secretFile: ${join(dir, 'turn-secret')}
  expirySweepMs: ${SWEEP_MS}
  # apart from the ranges of the other TURN test files, which run at the same time: portHeld must see our ports only
  relayPortRange: { min: 50500, max: 50549 }
`)
    const config = await loadGatewayConfig({
      file,
      env: {},
      flags: { host: '127.0.0.1', udpPort: 0, tcpPort: 0, api: '127.0.0.1:0', stun: false, identityFile: join(dir, 'gateway.key') }
    })
    gateway = await createGateway(config, { privateKey: (await loadOrCreateIdentity(config.identityFile)).privateKey, logger: createLogger({ level: 'silent' }) })
    await gateway.start()
    secret = (await readFile(join(dir, 'turn-secret'), 'utf8')).trim()
  })

  afterAll(async () => {
    for (const allocation of allocations) allocation.close()
    await gateway?.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('ends an allocation once its credential expires: Refresh and CreatePermission are refused, other allocations live on', async () => {
    const expiring = await allocate(2)
    const lasting = await allocate(600)
    // while the credential is valid, the allocation takes both requests
    await expiring.refresh(600)
    await expiring.createPermission(PEER_IP)
    expect(await portHeld(expiring.relayedAddress.port)).toBe(true)

    await waitFor(() => gateway.turn?.expiredAllocationsEnded === 1, 10_000, 'the gateway to end the expired allocation')
    // coturn ends the session on its relay thread, shortly after the CLI took the command
    await waitFor(async () => !(await portHeld(expiring.relayedAddress.port)), 5000, 'coturn to release the relayed port')
    // the allocation is gone; coturn sees a new client on the 5-tuple, whose credential has expired
    expect(await refusal(expiring.refresh(600))).toBe(401)
    expect(await refusal(expiring.createPermission(PEER_IP))).toBe(401)

    // the allocation made with a valid credential is untouched
    await lasting.refresh(600)
    await lasting.createPermission(PEER_IP)
    expect(await portHeld(lasting.relayedAddress.port)).toBe(true)
    const { samples } = await scrape(`${gateway.apiUrl ?? ''}/metrics`)
    expect(valueOf(samples, 'natmesh_turn_expired_allocations_ended_total')).toBe(1)
  })
})
