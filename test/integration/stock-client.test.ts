import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loadPeerConfig } from '../../src/config/index.js'
import { loadOrCreateIdentity } from '../../src/core/identity.js'
import { createPeer } from '../../src/peer/peer.js'
import type { NatmeshPeer } from '../../src/peer/peer.js'
import { isRelayed } from '../../src/core/relay-address.js'
import { CliGateway } from '../helpers/cli-gateway.js'
import { StockClients } from '../helpers/stock-clients.js'
import { ECHO_PROTOCOL } from '../helpers/stock-protocols.js'
import { waitFor } from '../helpers/wait-for.js'

describe('stock js-libp2p clients on a natmesh gateway', () => {
  let gateway: CliGateway | undefined
  const clients: StockClients[] = []
  let peer: NatmeshPeer | undefined
  let dir: string | undefined
  afterEach(async () => {
    await peer?.stop()
    peer = undefined
    if (dir != null) await rm(dir, { recursive: true, force: true })
    dir = undefined
    for (const c of clients.splice(0)) await c.stop()
    await gateway?.stop()
    gateway = undefined
  })

  it('one reserves, another reaches it through /p2p-circuit, and bytes go both ways', async () => {
    gateway = await CliGateway.start([])
    const listener = new StockClients()
    const dialer = new StockClients()
    clients.push(listener, dialer)
    const { peers: [target] } = await listener.reserve(gateway.address('tcp'))
    expect(target?.circuit).toContain(`/p2p/${gateway.peerId}/p2p-circuit/p2p/${target?.peerId ?? ''}`)
    // the reserving client was not handed an address it cannot parse
    expect(target?.circuit).not.toContain('/udx')

    await dialer.reserve(gateway.address('tcp'))
    const echoed = await dialer.command<{ equal: boolean, bytes: number }>({ cmd: 'echo', target: target!.circuit, bytes: 65_536 })
    expect(echoed).toMatchObject({ equal: true, bytes: 65_536 })
  })

  it('a natmesh peer reaches a stock client through the gateway', async () => {
    gateway = await CliGateway.start([])
    const listener = new StockClients()
    clients.push(listener)
    const { peers: [target] } = await listener.reserve(gateway.address('tcp'))

    dir = await mkdtemp(join(tmpdir(), 'natmesh-stock-'))
    const config = await loadPeerConfig({
      env: {},
      flags: { gateways: [gateway.address('udx'), gateway.address('tcp')], mode: 'relay-only', host: '127.0.0.1', natDetection: false, identityFile: join(dir, 'peer.key') }
    })
    peer = await createPeer(config, { privateKey: (await loadOrCreateIdentity(config.identityFile)).privateKey })
    await peer.start()
    // natmesh peers still get the gateway's /udx address in their reservation
    const relayAddrs = await waitFor(() => { const addrs = peer?.relayAddresses() ?? []; return addrs.length > 0 && addrs }, 10_000, 'the natmesh peer to reserve')
    expect(relayAddrs.map(String).some(a => a.includes('/udx/'))).toBe(true)

    const connection = await peer.connect(target!.circuit)
    expect(isRelayed(connection.remoteAddr)).toBe(true)
    const stream = await connection.newStream(ECHO_PROTOCOL, { runOnLimitedConnection: true, signal: AbortSignal.timeout(10_000) })
    const payload = crypto.getRandomValues(new Uint8Array(4096))
    const reading = (async () => { const got: Uint8Array[] = []; for await (const chunk of stream) got.push(chunk.subarray()); return Buffer.concat(got) })()
    stream.send(payload)
    await stream.close()
    expect((await reading).equals(payload)).toBe(true)
  })

  it('a stock client reaches a natmesh peer through the gateway; the peer\'s hole punch is skipped as NO_DCUTR, not failed', async () => {
    gateway = await CliGateway.start([])
    dir = await mkdtemp(join(tmpdir(), 'natmesh-stock-'))
    const config = await loadPeerConfig({
      env: {},
      flags: { gateways: [gateway.address('udx'), gateway.address('tcp')], host: '127.0.0.1', allowPrivateAddresses: true, natDetection: false, identityFile: join(dir, 'peer.key') }
    })
    peer = await createPeer(config, { privateKey: (await loadOrCreateIdentity(config.identityFile)).privateKey })
    const punches: Array<Record<string, unknown>> = []
    peer.addEventListener('event', (evt) => { if (evt.detail.event === 'hole-punch') punches.push(evt.detail) })
    await peer.node.handle(ECHO_PROTOCOL, async (stream) => {
      for await (const chunk of stream) if (!stream.send(chunk)) await stream.onDrain()
      await stream.close()
    }, { runOnLimitedConnection: true })
    await peer.start()
    const relayAddr = await waitFor(() => peer?.relayAddresses().map(String).find(a => a.includes('/tcp/')), 10_000, 'the natmesh peer to reserve')

    const dialer = new StockClients()
    clients.push(dialer)
    await dialer.reserve(gateway.address('tcp'))
    const echoed = await dialer.command<{ equal: boolean, bytes: number }>({ cmd: 'echo', target: relayAddr, bytes: 4096 })
    expect(echoed).toMatchObject({ equal: true, bytes: 4096 })
    // the natmesh side received the relayed connection, so it tried DCUtR; the stock client does not speak it
    const punch = await waitFor(() => punches[0], 10_000, 'the hole-punch outcome')
    expect(punch).toMatchObject({ outcome: 'skipped', code: 'NO_DCUTR' })
  })
})
