import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { loadPeerConfig } from '../../src/config/index.js'
import { loadOrCreateIdentity } from '../../src/core/identity.js'
import { createPeer } from '../../src/peer/peer.js'
import type { NatmeshPeer } from '../../src/peer/peer.js'
import type { PeerEvent } from '../../src/peer/events.js'
import { CliGateway } from '../helpers/cli-gateway.js'
import { waitFor } from '../helpers/wait-for.js'

/** relay-only natmesh peers of one CLI gateway, retrying a refused reservation about every second */
class Peers {
  readonly events = new Map<string, PeerEvent[]>()
  private readonly running = new Map<string, NatmeshPeer>()
  private dir = ''

  constructor (private readonly gateway: CliGateway) {}

  async init (): Promise<void> {
    this.dir = await mkdtemp(join(tmpdir(), 'natmesh-churn-'))
  }

  /** starts (or restarts, with the same key) peer `name`; it tries to reserve on its own */
  async start (name: string): Promise<NatmeshPeer> {
    const config = await loadPeerConfig({
      env: {},
      flags: {
        gateways: [this.gateway.address('udx'), this.gateway.address('tcp')],
        mode: 'relay-only',
        host: '127.0.0.1',
        allowPrivateAddresses: true,
        natDetection: false,
        reconnectInitialDelayMs: 200,
        reconnectMaxDelayMs: 1000,
        identityFile: join(this.dir, `${name}.key`)
      }
    })
    const identity = await loadOrCreateIdentity(config.identityFile)
    const peer = await createPeer(config, { privateKey: identity.privateKey })
    const events: PeerEvent[] = []
    this.events.set(name, events)
    peer.addEventListener('event', (evt) => { events.push(evt.detail) })
    this.running.set(name, peer)
    await peer.start()
    return peer
  }

  async stop (name: string): Promise<void> {
    await this.running.get(name)?.stop()
    this.running.delete(name)
  }

  async reserved (name: string): Promise<void> {
    await waitFor(() => this.of(name, 'reservation').length > 0, 20_000, `${name} to hold a reservation`)
  }

  async refused (name: string): Promise<Extract<PeerEvent, { event: 'reservation-refused' }>> {
    return waitFor(() => this.of(name, 'reservation-refused')[0], 20_000, `${name} to be refused`)
  }

  of<E extends PeerEvent['event']> (name: string, event: E): Array<Extract<PeerEvent, { event: E }>> {
    return (this.events.get(name) ?? []).filter((e): e is Extract<PeerEvent, { event: E }> => e.event === event)
  }

  async stopAll (): Promise<void> {
    for (const name of [...this.running.keys()]) await this.stop(name)
    if (this.dir !== '') await rm(this.dir, { recursive: true, force: true })
  }
}

describe('reservations of departed peers (CLI gateway)', () => {
  let gateway: CliGateway | undefined
  let peers: Peers | undefined
  beforeEach(() => { gateway = undefined; peers = undefined })
  afterEach(async () => {
    await peers?.stopAll()
    await gateway?.stop()
  })

  it('gives the slots of peers that left to newcomers once the grace is over; a refused peer is told why', async () => {
    gateway = await CliGateway.start(['--max-reservations', '3', '--reservation-grace-ms', '1000'])
    peers = new Peers(gateway)
    await peers.init()
    for (const name of ['a', 'b', 'c']) {
      await peers.start(name)
      await peers.reserved(name)
    }

    // the gateway is full: a fourth peer reaches it and is refused, and hears that rather than "unreachable"
    await peers.start('d')
    const refusal = await peers.refused('d')
    expect(refusal).toMatchObject({ gateway: gateway.peerId, code: 'RESERVATION_REFUSED', status: 'RESERVATION_REFUSED' })
    expect(refusal.reason).toMatch(/refused the reservation: RESERVATION_REFUSED/)
    expect(peers.of('d', 'gateway-lost')).toEqual([])
    expect(peers.of('d', 'gateway-connected').length).toBeGreaterThan(0)

    // the three leave; a second later their slots are free: the waiting peer and two newcomers all get one
    for (const name of ['a', 'b', 'c']) await peers.stop(name)
    await peers.start('e')
    await peers.start('f')
    for (const name of ['d', 'e', 'f']) await peers.reserved(name)
  })

  it('keeps the slot of a peer that comes back within the grace', async () => {
    gateway = await CliGateway.start(['--max-reservations', '1', '--reservation-grace-ms', '120000'])
    peers = new Peers(gateway)
    await peers.init()
    await peers.start('a')
    await peers.reserved('a')

    // A goes away: within the grace its slot is still its own, so a newcomer is refused
    await peers.stop('a')
    await peers.start('b')
    await peers.refused('b')

    // A comes back (same key) and gets its reservation, although the gateway is full
    await peers.start('a')
    await peers.reserved('a')
    expect(peers.of('a', 'reservation-refused')).toEqual([])
  })
})
