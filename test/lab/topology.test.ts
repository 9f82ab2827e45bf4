import { execFileSync } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cleanupStale, createTopology, lanRouterIp, type Topology } from '../../src/lab/index.js'
import { Agent, sleep } from './agent.js'
import { labNamespaces } from '../helpers/lab-runs.js'

const isRoot = process.getuid?.() === 0
const PREFIX = `nm-t${process.pid}-`
/** how long a packet that should have been dropped is given to turn up anyway (namespaces add ~0 latency) */
const GRACE_MS = 300

describe.skipIf(!isRoot)('netns NAT lab', () => {
  let topo: Topology
  let gw0: Agent
  let gw1: Agent
  const peers = new Map<string, Agent>()
  const peer = (slot: string): Agent => peers.get(slot)!

  beforeAll(async () => {
    topo = await createTopology({
      prefix: PREFIX,
      gateways: 2,
      peers: { A: 'cone', B: 'symmetric', C: 'udp-blocked', D: 'public' }
    })
    gw0 = await Agent.start(topo, topo.gateway(0))
    gw1 = await Agent.start(topo, topo.gateway(1))
    await Promise.all([gw0.udpBind(5000), gw0.udpBind(5099), gw0.tcpListen(6000), gw1.udpBind(5000)])
    for (const slot of topo.slots) peers.set(slot, await Agent.start(topo, topo.peer(slot)))
  })

  afterAll(async () => {
    await topo?.down()
  })

  it('cone: one port-preserving mapping for every destination, port-restricted filtering', async () => {
    const a = peer('A')
    await a.udpBind(40001)
    a.send({ op: 'udp-send', from: 40001, host: topo.gatewayIp(0), port: 5000, msg: 'cone-gw0' })
    a.send({ op: 'udp-send', from: 40001, host: topo.gatewayIp(1), port: 5000, msg: 'cone-gw1' })
    const seen0 = await gw0.waitFor((e) => e.msg === 'cone-gw0')
    const seen1 = await gw1.waitFor((e) => e.msg === 'cone-gw1')
    expect(seen0).toMatchObject({ from: topo.natWanIp('A'), port: 40001 })
    expect(seen1).toMatchObject({ from: topo.natWanIp('A'), port: 40001 })

    // the unsolicited datagram goes first; once the solicited one is in, the other had its chance
    gw0.send({ op: 'udp-send', from: 5099, host: topo.natWanIp('A'), port: 40001, msg: 'cone-unsolicited' })
    gw0.send({ op: 'udp-send', from: 5000, host: topo.natWanIp('A'), port: 40001, msg: 'cone-reply' })
    await a.waitFor((e) => e.msg === 'cone-reply')
    await sleep(GRACE_MS)
    expect(a.events.filter((e) => e.msg === 'cone-unsolicited')).toEqual([])
  })

  it('symmetric: a different random port for every destination', async () => {
    const b = peer('B')
    await b.udpBind(40002)
    b.send({ op: 'udp-send', from: 40002, host: topo.gatewayIp(0), port: 5000, msg: 'sym-gw0' })
    b.send({ op: 'udp-send', from: 40002, host: topo.gatewayIp(1), port: 5000, msg: 'sym-gw1' })
    b.send({ op: 'udp-send', from: 40002, host: topo.gatewayIp(0), port: 5099, msg: 'sym-gw0-5099' })
    const seen = await Promise.all([
      gw0.waitFor((e) => e.msg === 'sym-gw0'),
      gw1.waitFor((e) => e.msg === 'sym-gw1'),
      gw0.waitFor((e) => e.msg === 'sym-gw0-5099')
    ])
    for (const e of seen) expect(e.from).toBe(topo.natWanIp('B'))
    expect(new Set(seen.map((e) => e.port)).size).toBe(3)

    // each mapping works for its own destination
    gw0.send({ op: 'udp-send', from: 5000, host: topo.natWanIp('B'), port: seen[0].port, msg: 'sym-reply' })
    await b.waitFor((e) => e.msg === 'sym-reply')
  })

  it('udp-blocked: UDP never reaches the gateway, TCP does (NATed)', async () => {
    const c = peer('C')
    await c.udpBind(40003)
    c.send({ op: 'udp-send', from: 40003, host: topo.gatewayIp(0), port: 5000, msg: 'blocked-udp' })
    c.send({ op: 'tcp-connect', host: topo.gatewayIp(0), port: 6000, msg: 'blocked-tcp' })
    const tcp = await gw0.waitFor((e) => e.ev === 'tcp' && e.msg === 'blocked-tcp')
    expect(tcp.from).toBe(topo.natWanIp('C'))
    await sleep(GRACE_MS)
    expect(gw0.events.filter((e) => e.msg === 'blocked-udp')).toEqual([])
  })

  it('public: packets arrive from the peer itself, and unsolicited inbound gets in', async () => {
    const d = peer('D')
    expect(topo.peerIp('D')).toBe(topo.natWanIp('D'))
    expect(() => topo.nat('D')).toThrow(/public/)
    await d.udpBind(40004)
    d.send({ op: 'udp-send', from: 40004, host: topo.gatewayIp(0), port: 5000, msg: 'public' })
    expect(await gw0.waitFor((e) => e.msg === 'public')).toMatchObject({ from: topo.peerIp('D'), port: 40004 })
    gw0.send({ op: 'udp-send', from: 5099, host: topo.peerIp('D'), port: 40004, msg: 'public-unsolicited' })
    await d.waitFor((e) => e.msg === 'public-unsolicited')
  })

  it('no private peer address ever reaches the WAN', () => {
    const seenFrom = [...gw0.events, ...gw1.events].flatMap((e) => e.from ?? [])
    expect(seenFrom.length).toBeGreaterThan(0)
    expect(seenFrom.filter((ip) => !ip.startsWith('11.0.113.'))).toEqual([])
  })

  it('isolation: no route out of the lab, no device shared with the host, no IPv6', async () => {
    const names = topo.namespaces()
    expect(names.length).toBe(1 + 2 + 4 + 3) // pub, 2 gateways, 4 peers, 3 NAT routers
    for (const ns of names) {
      const natedPeer = topo.slots.find((s) => topo.peer(s) === ns && topo.flavourOf(s) !== 'public')
      const routeOut = await topo.exec(ns, ['ip', 'route', 'get', '8.8.8.8']).then((r) => r.stdout, () => null)
      if (natedPeer === undefined) {
        expect(routeOut, `${ns} has a route to 8.8.8.8`).toBeNull()
      } else {
        // a NATed peer's default route ends at its own router, which has none (checked in its own iteration)
        const router = lanRouterIp(topo.slots.indexOf(natedPeer) + 1)
        expect(routeOut).toContain(`via ${router} dev eth0`)
      }

      // a veth's other end is named by a netns id local to this namespace; resolve it to a lab namespace name
      const ids = JSON.parse((await topo.exec(ns, ['ip', '-j', 'netns', 'list-id'])).stdout) as Array<{ nsid: number, name?: string }>
      const links = JSON.parse((await topo.exec(ns, ['ip', '-j', '-d', 'link', 'show'])).stdout) as Array<{
        ifname: string, link_netnsid?: number, linkinfo?: { info_kind?: string }
      }>
      for (const link of links) {
        const kind = link.linkinfo?.info_kind
        if (link.ifname === 'lo' || kind === 'bridge') continue
        expect(kind, `${ns}: ${link.ifname}`).toBe('veth')
        const other = ids.find((i) => i.nsid === link.link_netnsid)?.name
        expect(names, `${ns}: ${link.ifname} leads to ${other ?? 'an unnamed namespace'}`).toContain(other)
      }

      const v6 = await topo.exec(ns, ['cat', '/proc/sys/net/ipv6/conf/all/disable_ipv6'])
      expect(v6.stdout.trim(), `${ns} has IPv6`).toBe('1')
    }
  })

  it('setFlavour: cone -> symmetric -> cone takes effect at once', async () => {
    const a = peer('A')
    await a.udpBind(40011)
    const ports = async (tag: string): Promise<number[]> => {
      a.send({ op: 'udp-send', from: 40011, host: topo.gatewayIp(0), port: 5000, msg: `${tag}-0` })
      a.send({ op: 'udp-send', from: 40011, host: topo.gatewayIp(1), port: 5000, msg: `${tag}-1` })
      const seen = [await gw0.waitFor((e) => e.msg === `${tag}-0`), await gw1.waitFor((e) => e.msg === `${tag}-1`)]
      return seen.map((e) => e.port!)
    }
    await topo.setFlavour('A', 'symmetric')
    const [s0, s1] = await ports('flip-sym')
    expect(s0).not.toBe(s1)
    await topo.setFlavour('A', 'cone')
    expect(await ports('flip-cone')).toEqual([40011, 40011])
  })

  it('setFlavour: rewires a slot to public and back, its processes survive', async () => {
    const c = peer('C')
    const natC = topo.nat('C')
    await topo.setFlavour('C', 'public')
    expect(topo.namespaces()).not.toContain(natC)
    expect(labNamespaces(PREFIX)).not.toContain(natC)
    c.send({ op: 'udp-send', from: 40003, host: topo.gatewayIp(0), port: 5000, msg: 'c-public' })
    expect(await gw0.waitFor((e) => e.msg === 'c-public')).toMatchObject({ from: topo.natWanIp('C'), port: 40003 })

    await topo.setFlavour('C', 'cone')
    expect(topo.peerIp('C')).toMatch(/^192\.168\.3\.2$/)
    c.send({ op: 'udp-send', from: 40003, host: topo.gatewayIp(0), port: 5000, msg: 'c-cone' })
    expect(await gw0.waitFor((e) => e.msg === 'c-cone')).toMatchObject({ from: topo.natWanIp('C'), port: 40003 })
  })

  it('down() removes every namespace; cleanupStale removes leftovers', async () => {
    await topo.down()
    expect(labNamespaces(PREFIX)).toEqual([])

    execFileSync('ip', ['netns', 'add', `${PREFIX}stale`])
    await expect(createTopology({ prefix: PREFIX, peers: {} })).rejects.toThrow(/already exist/)
    expect(await cleanupStale(PREFIX)).toEqual([`${PREFIX}stale`])
    expect(labNamespaces(PREFIX)).toEqual([])
  })
})

describe.skipIf(!isRoot)('netns NAT lab flavours: two hosts behind one NAT, double NAT', () => {
  let topo: Topology
  let gw0: Agent
  let gw1: Agent
  const peers = new Map<string, Agent>()
  const peer = (slot: string): Agent => peers.get(slot)!
  const prefix = `nm-tf${process.pid % 100000}-`

  beforeAll(async () => {
    topo = await createTopology({
      prefix,
      gateways: 2,
      peers: { A: 'cone', B: 'cone', C: 'cone' },
      sameNatAs: { B: 'A' },
      carrierNat: { C: 'symmetric' }
    })
    gw0 = await Agent.start(topo, topo.gateway(0))
    gw1 = await Agent.start(topo, topo.gateway(1))
    await Promise.all([gw0.udpBind(5000), gw1.udpBind(5000)])
    for (const slot of topo.slots) peers.set(slot, await Agent.start(topo, topo.peer(slot)))
  })

  afterAll(async () => {
    await topo?.down()
    expect(labNamespaces(prefix)).toEqual([])
  })

  it('same NAT: both peers face the WAN from one address, and reach each other over their LAN', async () => {
    expect(topo.nat('B')).toBe(topo.nat('A'))
    expect(topo.natWanIp('B')).toBe(topo.natWanIp('A'))
    expect([topo.peerIp('A'), topo.peerIp('B')]).toEqual(['192.168.1.2', '192.168.1.3'])
    const [a, b] = [peer('A'), peer('B')]
    await Promise.all([a.udpBind(41001), b.udpBind(41002)])
    a.send({ op: 'udp-send', from: 41001, host: topo.gatewayIp(0), port: 5000, msg: 'site-a' })
    b.send({ op: 'udp-send', from: 41002, host: topo.gatewayIp(0), port: 5000, msg: 'site-b' })
    expect(await gw0.waitFor((e) => e.msg === 'site-a')).toMatchObject({ from: topo.natWanIp('A'), port: 41001 })
    expect(await gw0.waitFor((e) => e.msg === 'site-b')).toMatchObject({ from: topo.natWanIp('A'), port: 41002 })
    // on the LAN bridge, not through the NAT: B sees A's own address
    a.send({ op: 'udp-send', from: 41001, host: topo.peerIp('B'), port: 41002, msg: 'lan-hello' })
    expect(await b.waitFor((e) => e.msg === 'lan-hello')).toMatchObject({ from: topo.peerIp('A'), port: 41001 })
  })

  it('same NAT: a flavour switch applies to every peer behind it; going public is refused', async () => {
    await topo.setFlavour('B', 'symmetric')
    expect([topo.flavourOf('A'), topo.flavourOf('B')]).toEqual(['symmetric', 'symmetric'])
    await topo.setFlavour('A', 'cone')
    expect(topo.flavourOf('B')).toBe('cone')
    await expect(topo.setFlavour('A', 'public')).rejects.toThrow(/NAT flavours only/)
  })

  it('double NAT: the carrier NAT (symmetric) in front of the home NAT (cone) decides the mapping', async () => {
    expect(topo.carrierNat('C')).not.toBe(topo.nat('C'))
    const homeWan = await topo.exec(topo.nat('C'), ['ip', '-4', '-o', 'addr', 'show', 'dev', 'wan0'])
    expect(homeWan.stdout).toContain('100.64.3.2/24')
    const c = peer('C')
    await c.udpBind(41003)
    c.send({ op: 'udp-send', from: 41003, host: topo.gatewayIp(0), port: 5000, msg: 'cgn-0' })
    c.send({ op: 'udp-send', from: 41003, host: topo.gatewayIp(1), port: 5000, msg: 'cgn-1' })
    const seen = [await gw0.waitFor((e) => e.msg === 'cgn-0'), await gw1.waitFor((e) => e.msg === 'cgn-1')]
    for (const e of seen) expect(e.from).toBe(topo.natWanIp('C'))
    expect(seen[0]!.port).not.toBe(seen[1]!.port)
    // the answer crosses both NATs back
    gw0.send({ op: 'udp-send', from: 5000, host: topo.natWanIp('C'), port: seen[0]!.port, msg: 'cgn-reply' })
    await c.waitFor((e) => e.msg === 'cgn-reply')
  })

  it('rejects options that contradict each other', async () => {
    const bad = async (opts: Omit<Parameters<typeof createTopology>[0], 'prefix'>): Promise<void> => {
      await createTopology({ prefix: `nm-tx${process.pid % 100000}-`, ...opts })
    }
    await expect(bad({ peers: { A: 'cone', B: 'symmetric' }, sameNatAs: { B: 'A' } })).rejects.toThrow(/must be cone too/)
    await expect(bad({ peers: { A: 'public', B: 'public' }, sameNatAs: { B: 'A' } })).rejects.toThrow(/public, it has no NAT/)
    await expect(bad({ peers: { A: 'cone' }, sameNatAs: { B: 'A' } })).rejects.toThrow(/no peer slot "B"/)
    await expect(bad({ peers: { A: 'public' }, carrierNat: { A: 'cone' } })).rejects.toThrow(/slot is public/)
    await expect(bad({ peers: { A: 'cone', B: 'cone' }, sameNatAs: { B: 'A' }, wan: { B: { delayMs: 5 } } })).rejects.toThrow(/give the link to A/)
    await expect(bad({ peers: { A: 'cone' }, wan: { A: { lossPercent: 150 } } })).rejects.toThrow(/lossPercent must be a number 0..100/)
    expect(labNamespaces(`nm-tx${process.pid % 100000}-`)).toEqual([])
  })
})
