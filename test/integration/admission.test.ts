import { createSocket } from 'node:dgram'
import type { Socket } from 'node:dgram'
import { connect } from 'node:net'
import type { Socket as TcpSocket } from 'node:net'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { loadPeerConfig } from '../../src/config/index.js'
import { loadOrCreateIdentity } from '../../src/core/identity.js'
import { createPeer } from '../../src/peer/peer.js'
import type { NatmeshPeer } from '../../src/peer/peer.js'
import type { PeerEvent } from '../../src/peer/events.js'
import { decodeControlMessage, encodeControlMessage, isControlMessage, MessageType, RejectReason } from '../../src/transport/control-message.js'
import { toUdpEndpoint } from '../../src/transport/index.js'
import { multiaddr } from '@multiformats/multiaddr'
import { CliGateway } from '../helpers/cli-gateway.js'
import { StockClients } from '../helpers/stock-clients.js'
import { waitFor } from '../helpers/wait-for.js'

describe('gateway admission per source IP (CLI gateway)', () => {
  let gateway: CliGateway | undefined
  const clients: StockClients[] = []
  const cleanups: Array<() => Promise<void> | void> = []
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
    for (const c of clients.splice(0)) await c.stop()
    await gateway?.stop()
    gateway = undefined
  })

  function stockClients (): StockClients {
    const c = new StockClients()
    clients.push(c)
    return c
  }

  it('lets 100 peers behind one IP reserve, 16 at a time, with the default limits', async () => {
    gateway = await CliGateway.start([])
    // a stock client must dial and reserve within 5 s; on a loaded machine one may miss that and try again, as a
    // real client would. With libp2p's own limits (5 connections/s per IP, 10 pending) dozens give up
    const result = await stockClients().reserve(gateway.address('tcp'), 100, '127.0.0.2', { concurrency: 16, attempts: 3 })
    expect(result.errors).toEqual([])
    expect(result.peers).toHaveLength(100)
  })

  it('a full relay is shared between IPs: newcomers from a quiet IP get slots, more from the busy one do not', async () => {
    gateway = await CliGateway.start(['--max-reservations', '20'])
    const busy = stockClients()
    expect((await busy.reserve(gateway.address('tcp'), 20, '127.0.0.2')).peers).toHaveLength(20)
    // full: a quiet IP's newcomers still get in (each takes the busy IP's newest reservation)
    const quiet = await stockClients().reserve(gateway.address('tcp'), 5, '127.0.0.3')
    expect(quiet.errors).toEqual([])
    expect(quiet.peers).toHaveLength(5)
    // the busy IP's evicted clients are told at once (their connection to the gateway is closed)
    await waitFor(async () => (await busy.command<{ held: number }>({ cmd: 'held' })).held === 15, 10_000, 'the busy IP to hold 15 reservations')
    // while the busy IP holds the most, its own newcomers are refused
    const more = await busy.reserve(gateway.address('tcp'), 3, '127.0.0.2')
    expect(more.peers).toHaveLength(0)
    expect(more.errors.join(' ')).toMatch(/RESERVATION_REFUSED|reservation failed/)
  })

  it('connections from one IP that never finish their handshake do not lock out another IP', async () => {
    // no connection rate to speak of, so only the per-IP cap on pending handshakes stands between this source
    // and the 1024 pending slots of all sources
    gateway = await CliGateway.start(['--connections-per-ip-per-second', '100000'])
    const tcp = toUdpOrTcp(gateway.address('tcp'))
    // 1,100 silent connections from 127.0.0.4: each would hold a pending-handshake slot until the upgrade timeout
    const silent: TcpSocket[] = []
    cleanups.push(() => { for (const socket of silent) socket.destroy() })
    await Promise.all(Array.from({ length: 1100 }, async () => new Promise<void>((resolve) => {
      const socket = connect({ host: tcp.host, port: tcp.port, localAddress: '127.0.0.4' }, () => { resolve() })
      socket.on('error', () => { resolve() })
      silent.push(socket)
    })))
    const result = await stockClients().reserve(gateway.address('tcp'), 20, '127.0.0.5')
    expect(result.errors).toEqual([])
    expect(result.peers).toHaveLength(20)
  })

  it('a HELLO flood from one source does not push a peer joining meanwhile off UDP', async () => {
    gateway = await CliGateway.start([])
    const udp = toUdpOrTcp(gateway.address('udx'))
    const attacker = await floodHellos(udp, '127.0.0.6', 500)
    cleanups.push(() => { attacker.stop() })
    // the flood is on and the gateway pushing back (per source, or, before per-source quotas, its table full)
    await waitFor(() => attacker.rejected() > 0, 10_000, 'the gateway to refuse some of the flood')

    const dir = await mkdtemp(join(tmpdir(), 'natmesh-admission-'))
    cleanups.push(async () => { await rm(dir, { recursive: true, force: true }) })
    const config = await loadPeerConfig({
      env: {},
      flags: { gateways: [gateway.address('udx'), gateway.address('tcp')], mode: 'relay-only', host: '127.0.0.1', natDetection: false, identityFile: join(dir, 'peer.key') }
    })
    const peer: NatmeshPeer = await createPeer(config, { privateKey: (await loadOrCreateIdentity(config.identityFile)).privateKey })
    const events: PeerEvent[] = []
    peer.addEventListener('event', (evt) => { events.push(evt.detail) })
    cleanups.push(async () => { await peer.stop() })
    await peer.start()
    const connected = await waitFor(() => events.find((e): e is Extract<PeerEvent, { event: 'gateway-connected' }> => e.event === 'gateway-connected'), 20_000, 'the peer to connect to the gateway')
    expect(connected.transport).toBe('udx')
    expect(attacker.rejected()).toBeGreaterThan(0)
  })
})

function toUdpOrTcp (address: string): { host: string, port: number } {
  const ma = multiaddr(address)
  const udp = toUdpEndpoint(ma.decapsulateCode(421))
  if (udp != null) return udp
  const [ip, tcp] = ma.getComponents()
  return { host: ip?.value ?? '', port: Number(tcp?.value) }
}

/** Sends `perSecond` HELLOs a second, each with a fresh stream id, from `host` (a raw UDP socket), until stopped. */
async function floodHellos (target: { host: string, port: number }, host: string, perSecond: number): Promise<{ stop: () => void, rejected: () => number }> {
  const socket: Socket = createSocket('udp4')
  let rejected = 0
  socket.on('message', (buf) => {
    if (!isControlMessage(buf)) return
    const message = decodeControlMessage(buf)
    if (message.type === MessageType.REJECT && message.reason === RejectReason.OVERLOADED) rejected++
  })
  await new Promise<void>(resolve => socket.bind(0, host, resolve))
  const perTick = perSecond / 100
  const timer = setInterval(() => {
    for (let i = 0; i < perTick; i++) {
      const dialerStreamId = 1 + Math.floor(Math.random() * 0xffff_fffe)
      socket.send(encodeControlMessage({ type: MessageType.HELLO, dialerStreamId }), target.port, target.host)
    }
  }, 10)
  return { stop: () => { clearInterval(timer); socket.close() }, rejected: () => rejected }
}
