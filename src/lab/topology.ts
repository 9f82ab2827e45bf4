import type { ChildProcess, SpawnOptions } from 'node:child_process'
import { gatewayAltIp, gatewayIp, lanPeerIp, lanRouterIp, MAX_GATEWAYS, MAX_SLOTS, slotWanIp, WAN_PREFIX_LEN } from './addressing.js'
import { applyFlavour, flushConntrack, isNated, LAN_IF, parseFlavour, WAN_IF, type NatFlavour } from './nat.js'
import { addNs, addVeth, assertPrefix, delNs, execIn, ipIn, listNs, REQUIRED_PREFIX, spawnIn } from './netns.js'
import type { RunOptions, RunResult } from './run.js'

/**
 * A role names one namespace: 'pub' (the internet segment: a bridge, no uplink), 'gateway<i>' (0-based),
 * 'peer<slot>' and 'nat<slot>' (the slot's NAT router; absent when the slot is public).
 */
export type Role = 'pub' | `gateway${number}` | `peer${string}` | `nat${string}`

export interface TopologyOptions {
  /** prefix of every namespace name; must start with "nm-". Default "nm-" */
  prefix?: string
  /** number of gateways, at 11.0.113.10, .11, ... Default 1 */
  gateways?: number
  /** peer slots (names of 1-8 letters/digits) and their NAT flavour, e.g. { A: 'cone', B: 'symmetric' } */
  peers: Record<string, NatFlavour>
}

export interface Topology {
  readonly prefix: string
  readonly gatewayCount: number
  /** slot names, in creation order (slot number = position + 1) */
  readonly slots: readonly string[]
  nsOf: (role: Role) => string
  gateway: (i: number) => string
  peer: (slot: string) => string
  /** throws when the slot is public */
  nat: (slot: string) => string
  /** names of all namespaces the lab currently consists of */
  namespaces: () => string[]
  gatewayIp: (i: number) => string
  /** gateway i's second WAN address (for STUN's alternate IP) */
  gatewayAltIp: (i: number) => string
  /** the address the slot is seen from on the WAN: its NAT router's, or the peer's own when public */
  natWanIp: (slot: string) => string
  /** the peer's own address: 192.168.x.2 behind a NAT, or on the WAN when public */
  peerIp: (slot: string) => string
  flavourOf: (slot: string) => NatFlavour
  /**
   * Between NAT flavours this swaps the rules and flushes conntrack. Switching to or from 'public' rewires the
   * slot: its peer namespace stays (processes in it survive) but gets a new address.
   */
  setFlavour: (slot: string, flavour: NatFlavour) => Promise<void>
  flushConntrack: (slot: string) => Promise<void>
  exec: (ns: string, argv: string[], opts?: RunOptions) => Promise<RunResult>
  /** the child is killed by down() if still running */
  spawnIn: (ns: string, cmd: string, args?: string[], opts?: SpawnOptions) => ChildProcess
  /** kills spawned processes and removes every namespace; safe to call twice and after a partial build */
  down: () => Promise<void>
}

const BRIDGE = 'br0'
const PEER_IF = 'eth0'

interface Slot {
  readonly name: string
  /** 1-based; picks the WAN and LAN addresses */
  readonly num: number
  flavour: NatFlavour
}

class NetnsTopology implements Topology {
  readonly slots: readonly string[]
  private readonly slotState = new Map<string, Slot>()
  private readonly live = new Set<string>()
  private readonly children = new Set<ChildProcess>()
  private downing?: Promise<void>

  constructor (readonly prefix: string, readonly gatewayCount: number, peers: Record<string, NatFlavour>) {
    this.slots = Object.keys(peers)
    Object.entries(peers).forEach(([name, flavour], i) => { this.slotState.set(name, { name, num: i + 1, flavour }) })
  }

  async build (): Promise<void> {
    const pub = this.nsOf('pub')
    await this.addNs(pub)
    await ipIn(pub, ['link', 'add', BRIDGE, 'type', 'bridge'])
    await ipIn(pub, ['link', 'set', BRIDGE, 'up'])
    const gateways = Array.from({ length: this.gatewayCount }, async (_, i) => { await this.buildGateway(i) })
    const slots = [...this.slotState.values()].map(async (s) => {
      await this.addNs(this.peer(s.name))
      await this.wire(s)
    })
    // allSettled: on failure every branch has stopped before down() removes what they made
    const failed = (await Promise.allSettled([...gateways, ...slots])).find((r) => r.status === 'rejected')
    if (failed !== undefined) throw failed.reason
  }

  nsOf (role: Role): string {
    if (role === 'pub') return `${this.prefix}pub`
    const gw = /^gateway(\d+)$/.exec(role)
    if (gw !== null) return this.gateway(Number(gw[1]))
    const peer = /^peer(.+)$/.exec(role)
    if (peer !== null) return this.peer(peer[1] as string)
    const nat = /^nat(.+)$/.exec(role)
    if (nat !== null) return this.nat(nat[1] as string)
    throw new Error(`unknown lab role "${role}"`)
  }

  gateway (i: number): string {
    if (!Number.isInteger(i) || i < 0 || i >= this.gatewayCount) throw new Error(`no gateway ${i} (lab has ${this.gatewayCount})`)
    return `${this.prefix}gw${i}`
  }

  peer (slot: string): string {
    return `${this.prefix}peer${this.slot(slot).name}`
  }

  nat (slot: string): string {
    const s = this.slot(slot)
    if (!isNated(s.flavour)) throw new Error(`slot ${slot} is public: it has no NAT router`)
    return `${this.prefix}nat${s.name}`
  }

  namespaces (): string[] {
    return [...this.live]
  }

  gatewayIp (i: number): string {
    this.gateway(i)
    return gatewayIp(i)
  }

  gatewayAltIp (i: number): string {
    this.gateway(i)
    return gatewayAltIp(i)
  }

  natWanIp (slot: string): string {
    return slotWanIp(this.slot(slot).num)
  }

  peerIp (slot: string): string {
    const s = this.slot(slot)
    return isNated(s.flavour) ? lanPeerIp(s.num) : slotWanIp(s.num)
  }

  flavourOf (slot: string): NatFlavour {
    return this.slot(slot).flavour
  }

  async setFlavour (slot: string, flavour: NatFlavour): Promise<void> {
    const s = this.slot(slot)
    const next = parseFlavour(flavour)
    if (isNated(s.flavour) && isNated(next)) {
      await applyFlavour(this.nat(slot), next)
      s.flavour = next
    } else if (isNated(s.flavour) !== isNated(next)) {
      await this.unwire(s)
      s.flavour = next
      await this.wire(s)
    }
  }

  async flushConntrack (slot: string): Promise<void> {
    await flushConntrack(this.nat(slot))
  }

  async exec (ns: string, argv: string[], opts?: RunOptions): Promise<RunResult> {
    this.assertOwn(ns)
    return await execIn(ns, argv, opts)
  }

  spawnIn (ns: string, cmd: string, args: string[] = [], opts: SpawnOptions = {}): ChildProcess {
    this.assertOwn(ns)
    const child = spawnIn(ns, cmd, args, opts)
    this.children.add(child)
    child.once('exit', () => this.children.delete(child))
    return child
  }

  async down (): Promise<void> {
    this.downing ??= (async () => {
      for (const child of this.children) child.kill('SIGKILL')
      await Promise.allSettled([...this.live].map(async (ns) => {
        await delNs(ns)
        this.live.delete(ns)
      }))
      if (this.live.size > 0) throw new Error(`lab namespaces left behind: ${[...this.live].join(', ')}`)
    })()
    await this.downing
  }

  private slot (name: string): Slot {
    const s = this.slotState.get(name)
    if (s === undefined) throw new Error(`no peer slot "${name}" (slots: ${this.slots.join(', ')})`)
    return s
  }

  private assertOwn (ns: string): void {
    if (!this.live.has(ns)) throw new Error(`"${ns}" is not a namespace of this lab`)
  }

  private async addNs (ns: string, sysctls?: string[]): Promise<void> {
    await addNs(ns, sysctls)
    this.live.add(ns)
  }

  private async plugIntoWan (ns: string, ifName: string, pubSide: string, ip: string): Promise<void> {
    const pub = this.nsOf('pub')
    await addVeth(ns, ifName, pub, pubSide)
    await ipIn(pub, ['link', 'set', pubSide, 'master', BRIDGE, 'up'])
    await ipIn(ns, ['addr', 'add', `${ip}/${WAN_PREFIX_LEN}`, 'dev', ifName])
    await ipIn(ns, ['link', 'set', ifName, 'up'])
  }

  private async buildGateway (i: number): Promise<void> {
    const ns = this.gateway(i)
    await this.addNs(ns)
    // no default route anywhere: the WAN /24 is the whole "internet"
    await this.plugIntoWan(ns, 'wan0', `g${i}`, gatewayIp(i))
    // a secondary address: traffic the gateway starts still leaves from gatewayIp(i)
    await ipIn(ns, ['addr', 'add', `${gatewayAltIp(i)}/${WAN_PREFIX_LEN}`, 'dev', 'wan0'])
  }

  /** Connects the slot's existing peer namespace to the WAN, directly or through a new NAT router namespace. */
  private async wire (s: Slot): Promise<void> {
    const peer = this.peer(s.name)
    if (!isNated(s.flavour)) {
      await this.plugIntoWan(peer, PEER_IF, `s${s.name}`, slotWanIp(s.num))
      return
    }
    const nat = this.nat(s.name)
    await this.addNs(nat, ['net.ipv4.ip_forward=1'])
    await this.plugIntoWan(nat, WAN_IF, `s${s.name}`, slotWanIp(s.num))
    await addVeth(nat, LAN_IF, peer, PEER_IF)
    await ipIn(nat, ['addr', 'add', `${lanRouterIp(s.num)}/24`, 'dev', LAN_IF])
    await ipIn(nat, ['link', 'set', LAN_IF, 'up'])
    await ipIn(peer, ['addr', 'add', `${lanPeerIp(s.num)}/24`, 'dev', PEER_IF])
    await ipIn(peer, ['link', 'set', PEER_IF, 'up'])
    // the peer's default route ends at its NAT router, which itself has no default route
    await ipIn(peer, ['route', 'add', 'default', 'via', lanRouterIp(s.num)])
    await applyFlavour(nat, s.flavour)
  }

  private async unwire (s: Slot): Promise<void> {
    // deleting a veth end removes its pair right away; a deleted namespace frees its devices only later, and the
    // re-wire reuses their names
    await ipIn(this.peer(s.name), ['link', 'del', PEER_IF])
    if (isNated(s.flavour)) {
      const nat = this.nat(s.name)
      await ipIn(nat, ['link', 'del', WAN_IF])
      await delNs(nat)
      this.live.delete(nat)
    }
  }
}

/** The names a lab with this prefix gives its namespaces: <prefix>pub, <prefix>gw<i>, <prefix>peer<slot>, <prefix>nat<slot>. */
export function isLabNamespace (prefix: string, name: string): boolean {
  return name.startsWith(prefix) && /^(pub|gw\d{1,3}|peer[A-Za-z0-9]{1,8}|nat[A-Za-z0-9]{1,8})$/.test(name.slice(prefix.length))
}

/**
 * Removes the namespaces of the lab that used exactly this prefix (`lab up`, a `--keep` run or a crashed one), and
 * nothing else: another run whose prefix merely starts the same way (nm-lab-2- under nm-lab-) keeps its own.
 */
export async function removeLab (prefix: string): Promise<string[]> {
  assertPrefix(prefix)
  const ours = (await listNs()).filter((name) => isLabNamespace(prefix, name))
  await Promise.allSettled(ours.map(delNs))
  return ours
}

/**
 * Builds a NAT lab out of network namespaces: a bridge "internet" (11.0.113.0/24) with gateways and, per peer slot,
 * either a public peer or a NAT router plus a peer behind it. Nothing in it has a route out of the lab.
 * On failure everything built so far is removed before the error is thrown.
 */
export async function createTopology (opts: TopologyOptions): Promise<Topology> {
  const prefix = opts.prefix ?? REQUIRED_PREFIX
  assertPrefix(prefix)
  const gateways = opts.gateways ?? 1
  if (!Number.isInteger(gateways) || gateways < 0 || gateways > MAX_GATEWAYS) {
    throw new Error(`gateways must be 0..${MAX_GATEWAYS}, got ${gateways}`)
  }
  const slotNames = Object.keys(opts.peers)
  if (slotNames.length > MAX_SLOTS) throw new Error(`at most ${MAX_SLOTS} peer slots`)
  const badSlot = slotNames.find((n) => !/^[A-Za-z0-9]{1,8}$/.test(n))
  if (badSlot !== undefined) throw new Error(`peer slot name "${badSlot}" must be 1-8 letters or digits`)
  const peers = Object.fromEntries(Object.entries(opts.peers).map(([slot, f]) => [slot, parseFlavour(f)]))

  const taken = (await listNs()).filter((n) => n.startsWith(prefix))
  if (taken.length > 0) {
    throw new Error(`namespaces with prefix "${prefix}" already exist (${taken.join(', ')}): another lab runs with ` +
      'this prefix, or a crashed one left them (cleanupStale removes them)')
  }

  const topo = new NetnsTopology(prefix, gateways, peers)
  try {
    await topo.build()
  } catch (err) {
    await topo.down().catch(() => {})
    throw err
  }
  return topo
}
