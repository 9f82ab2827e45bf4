/**
 * NAT type detection against every lab NAT flavour: one `natmesh gateway` process (STUN on 3478/3479 at its
 * address and at its second WAN address), and `natmesh doctor --json` run in each flavour's peer namespace. A real
 * peer daemon behind the cone NAT also reports its type at start-up.
 *
 * Needs root (namespaces, nftables, conntrack) and a built dist/ (`tsc -p tsconfig.json`; `npm test` does it).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createTopology, DEFAULT_CLI, LabProcess } from '../../src/lab/index.js'
import type { NatFlavour, Topology } from '../../src/lab/index.js'
import type { NatReport, NatType } from '../../src/nat/types.js'

const isRoot = process.getuid?.() === 0

const EXPECTED: Array<{ slot: string, flavour: NatFlavour, natType: NatType }> = [
  { slot: 'P', flavour: 'public', natType: 'no-nat' },
  { slot: 'F', flavour: 'full-cone', natType: 'full-cone' },
  { slot: 'R', flavour: 'restricted-cone', natType: 'restricted-cone' },
  { slot: 'C', flavour: 'cone', natType: 'port-restricted-cone' },
  { slot: 'S', flavour: 'symmetric', natType: 'symmetric' },
  { slot: 'U', flavour: 'udp-blocked', natType: 'udp-blocked' }
]

describe.skipIf(!isRoot)('NAT type detection in the namespace lab', () => {
  let topo: Topology | undefined
  let dir: string | undefined
  const processes: LabProcess[] = []
  let gatewayAddr = ''
  const reports = new Map<string, NatReport>()

  const spawn = (name: string, ns: string, args: string[]): LabProcess => {
    const proc = new LabProcess(name, (topo as Topology).spawnIn(ns, process.execPath, [DEFAULT_CLI, ...args], { stdio: ['pipe', 'pipe', 'pipe'] }))
    proc.child.stdin?.end()
    processes.push(proc)
    return proc
  }

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'natmesh-nat-lab-'))
    topo = await createTopology({
      prefix: `nm-nd${process.pid % 100_000}-`,
      gateways: 1,
      peers: Object.fromEntries(EXPECTED.map(e => [e.slot, e.flavour]))
    })
    const gwIp = topo.gatewayIp(0)
    const gateway = spawn('gateway', topo.gateway(0), [
      'gateway', '--host', '0.0.0.0', '--announce', gwIp, '--stun-alternate-address', topo.gatewayAltIp(0),
      '--api', '127.0.0.1:8080', '--identity-file', join(dir, 'gateway.key'), '--json', '--log-level', 'warn'
    ])
    const started = await gateway.waitFor(e => e.event === 'gateway-started', 30_000, 'gateway-started event')
    expect(started.stun).toEqual([`${gwIp}:3478`, `${gwIp}:3479`, `${topo.gatewayAltIp(0)}:3478`, `${topo.gatewayAltIp(0)}:3479`])
    gatewayAddr = `/ip4/${gwIp}/udp/4001/udx/p2p/${String(started.peerId)}`
    // both addresses, as a user gives them: doctor exits 1 when no gateway answers, and UDP-blocked peers reach it over TCP
    const tcpAddr = `/ip4/${gwIp}/tcp/4001/p2p/${String(started.peerId)}`

    // all flavours at once: each doctor waits for its unanswered tests in parallel with the others
    const lab = topo
    await Promise.all(EXPECTED.map(async ({ slot }) => {
      const { stdout } = await lab.exec(lab.peer(slot), [process.execPath, DEFAULT_CLI, 'doctor', '--gateway', gatewayAddr, '--gateway', tcpAddr, '--json'], { timeoutMs: 30_000 })
      reports.set(slot, JSON.parse(stdout) as NatReport)
    }))
  })

  afterAll(async () => {
    await topo?.down()
    if (dir != null) await rm(dir, { recursive: true, force: true })
  })

  it.each(EXPECTED)('$flavour is detected as $natType', ({ slot, natType }) => {
    const report = reports.get(slot) as NatReport
    expect({ slot, natType: report.natType, notes: report.notes }).toEqual({ slot, natType, notes: natType === 'udp-blocked' ? report.notes : [] })
    if (natType === 'udp-blocked') {
      expect(report.publicAddress).toBeUndefined()
      expect(report.notes.join()).toMatch(/no STUN answer/)
      return
    }
    expect(report.confidence).toBeGreaterThanOrEqual(0.9)
    expect(report.publicAddress?.address).toBe((topo as Topology).natWanIp(slot))
  })

  it('reports mapping, filtering, allocation and hairpinning per flavour', () => {
    const detail = (slot: string): Partial<NatReport> => {
      const { mapping, filtering, portPreserved, allocation, hairpinning } = reports.get(slot) as NatReport
      return { mapping, filtering, portPreserved, allocation, hairpinning }
    }
    expect(detail('P')).toEqual({ mapping: 'endpoint-independent', filtering: 'endpoint-independent', portPreserved: true, allocation: 'preserving', hairpinning: true })
    expect(detail('F')).toEqual({ mapping: 'endpoint-independent', filtering: 'endpoint-independent', portPreserved: true, allocation: 'preserving', hairpinning: false })
    expect(detail('R')).toEqual({ mapping: 'endpoint-independent', filtering: 'address-dependent', portPreserved: true, allocation: 'preserving', hairpinning: false })
    expect(detail('C')).toEqual({ mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', portPreserved: true, allocation: 'preserving', hairpinning: false })
    // fully-random masquerade: a new random port per destination (keeping the local one by chance is ~1 in 30,000)
    expect(detail('S')).toEqual({ mapping: 'address-and-port-dependent', filtering: 'address-and-port-dependent', portPreserved: false, allocation: 'random', hairpinning: false })
  })

  it('a peer daemon reports its NAT type at start-up as a nat-type event', async () => {
    const peer = spawn('peer', (topo as Topology).peer('C'), [
      'peer', '--gateway', gatewayAddr, '--identity-file', join(dir as string, 'peer.key'), '--json', '--log-level', 'warn'
    ])
    const event = await peer.waitFor(e => e.event === 'nat-type', 20_000, 'nat-type event')
    expect(event).toMatchObject({ natType: 'port-restricted-cone', mapping: 'endpoint-independent', filtering: 'address-and-port-dependent', publicAddress: expect.stringMatching(/^11\.0\.113\.\d+:\d+$/) })
    peer.child.kill('SIGTERM')
  })
})
