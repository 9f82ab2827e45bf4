import type { ChildProcess, SpawnOptions } from 'node:child_process'
import { existsSync } from 'node:fs'
import { carrierClientIp, carrierRouterIp, gatewayAltIp, gatewayIp, lanPeerIp, lanRouterIp, MAX_LAN_HOSTS, slotRenumberedWanIp, slotWanIp, WAN_PREFIX_LEN } from './addressing.js'
import { addLanBridge, moveToLan, plugIntoLan, renumberWan } from './lan.js'
import { applyFlavour, flushConntrack, isNated, parseFlavour, WAN_IF, type NatFlavour } from './nat.js'
import { addNs, addVeth, delNs, execIn, ipIn, listNs, spawnIn } from './netns.js'
import type { RunOptions, RunResult } from './run.js'
import { planTopology, type Slot, type TopologyOptions } from './topology-plan.js'
import { waitForWanLink, WAN_LINK_INNER_IF, WAN_LINK_OUTER_IF, wanLinkArgs, type WanLink } from './wan-link.js'

export type { TopologyOptions } from './topology-plan.js'

/**
 * A role names one namespace: 'pub' (the internet segment: a bridge, no uplink), 'gateway<i>' (0-based),
 * 'peer<slot>' and 'nat<slot>' (the slot's NAT router, or the one it shares; absent when the slot is public).
 */
export type Role = 'pub' | `gateway${number}` | `peer${string}` | `nat${string}`

export interface Topology {
  readonly prefix: string
  readonly gatewayCount: number
  /** slot names, in creation order (slot number = position + 1) */
  readonly slots: readonly string[]
  nsOf: (role: Role) => string
  gateway: (i: number) => string
  peer: (slot: string) => string
  /** the NAT router the slot's peer sits behind (its own, or the one it shares); throws when the slot is public */
  nat: (slot: string) => string
  /** the slot's carrier-grade NAT router; throws when it has none */
  carrierNat: (slot: string) => string
  /** the namespace of the WAN emulator on the slot's internet link; throws when it has none */
  wanLink: (slot: string) => string
  /** the slot's WAN emulator settings, undefined when it has none */
  wanLinkOf: (slot: string) => WanLink | undefined
  /** names of all namespaces the lab currently consists of */
  namespaces: () => string[]
  gatewayIp: (i: number) => string
  /** gateway i's second WAN address (for STUN's alternate IP) */
  gatewayAltIp: (i: number) => string
  /** the address the slot is seen from on the WAN: its NAT router's, or the peer's own when public */
  natWanIp: (slot: string) => string
  /** the peer's own address: 192.168.x.2 (.3, ... for peers sharing the NAT) behind a NAT, or on the WAN when public */
  peerIp: (slot: string) => string
  flavourOf: (slot: string) => NatFlavour
  /**
   * Between NAT flavours this swaps the rules and flushes conntrack. Switching to or from 'public' rewires the
   * slot: its peer namespace stays (processes in it survive) but gets a new address. A slot whose NAT is shared,
   * or that has a carrier NAT, only switches between NAT flavours (for a shared NAT: every sharer's flavour).
   */
  setFlavour: (slot: string, flavour: NatFlavour) => Promise<void>
  /** forgets the mappings of the slot's NAT (and of its carrier NAT) */
  flushConntrack: (slot: string) => Promise<void>
  /**
   * Moves the slot's running peer onto the LAN of `behind`'s NAT router (a network change: its processes survive,
   * its address, default route and public address change). The slot then shares that NAT and its flavour. A slot
   * whose own NAT other slots share cannot move.
   */
  movePeer: (slot: string, behind: string) => Promise<void>
  /**
   * Restarts the NAT router the slot faces the internet through (its carrier NAT, if it has one) with new
   * mappings: its WAN address alternates between natWanIp's two values and every mapping is forgotten.
   */
  restartNat: (slot: string) => Promise<void>
  exec: (ns: string, argv: string[], opts?: RunOptions) => Promise<RunResult>
  /** the child is killed by down() if still running */
  spawnIn: (ns: string, cmd: string, args?: string[], opts?: SpawnOptions) => ChildProcess
  /** kills spawned processes and removes every namespace; safe to call twice and after a partial build */
  down: () => Promise<void>
}

const BRIDGE = 'br0'
const PEER_IF = 'eth0'
/** a bridge inside a router namespace would hand LAN-to-LAN frames to the router's nft forward chain (policy drop) */
const BRIDGE_NF_SYSCTL = 'net.bridge.bridge-nf-call-iptables'
const ROUTER_SYSCTLS = ['net.ipv4.ip_forward=1',
  ...(existsSync(`/proc/sys/${BRIDGE_NF_SYSCTL.replaceAll('.', '/')}`) ? [`${BRIDGE_NF_SYSCTL}=0`] : [])]

class NetnsTopology implements Topology {
  readonly slots: readonly string[]
  private readonly slotState = new Map<string, Slot>()
  private readonly live = new Set<string>()
  private readonly children = new Set<ChildProcess>()
  private downing?: Promise<void>

  constructor (readonly prefix: string, readonly gatewayCount: number, slots: Slot[]) {
    this.slots = slots.map((s) => s.name)
    for (const s of slots) this.slotState.set(s.name, s)
  }

  async build (): Promise<void> {
    const pub = this.nsOf('pub')
    await this.addNs(pub)
    await ipIn(pub, ['link', 'add', BRIDGE, 'type', 'bridge'])
    await ipIn(pub, ['link', 'set', BRIDGE, 'up'])
    const gateways = Array.from({ length: this.gatewayCount }, async (_, i) => { await this.buildGateway(i) })
    // one branch per internet link: its peer namespaces (the slot's, and those of the slots sharing its NAT), then the wiring
    const slots = [...this.slotState.values()].filter((s) => s.host === undefined).map(async (s) => {
      for (const sharer of this.sharersOf(s)) await this.addNs(this.peer(sharer.name))
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
    const s = this.linkOwner(slot)
    if (!isNated(s.flavour)) throw new Error(`slot ${slot} is public: it has no NAT router`)
    return `${this.prefix}nat${s.name}`
  }

  carrierNat (slot: string): string {
    const s = this.linkOwner(slot)
    if (s.carrier === undefined) throw new Error(`slot ${slot} has no carrier NAT`)
    return `${this.prefix}cgn${s.name}`
  }

  wanLink (slot: string): string {
    const s = this.linkOwner(slot)
    if (s.wan === undefined) throw new Error(`slot ${slot} has no WAN emulator`)
    return `${this.prefix}wan${s.name}`
  }

  wanLinkOf (slot: string): WanLink | undefined {
    const wan = this.linkOwner(slot).wan
    return wan === undefined ? undefined : { ...wan }
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
    const owner = this.linkOwner(slot)
    return owner.renumbered === true ? slotRenumberedWanIp(owner.num) : slotWanIp(owner.num)
  }

  peerIp (slot: string): string {
    const s = this.slot(slot)
    const owner = this.linkOwner(slot)
    return isNated(s.flavour) ? lanPeerIp(owner.num, s.lanHost) : slotWanIp(s.num)
  }

  flavourOf (slot: string): NatFlavour {
    return this.slot(slot).flavour
  }

  async setFlavour (slot: string, flavour: NatFlavour): Promise<void> {
    const s = this.slot(slot)
    const next = parseFlavour(flavour)
    const sharers = this.sharersOf(this.linkOwner(slot))
    if (isNated(s.flavour) && isNated(next)) {
      await applyFlavour(this.nat(slot), next)
      for (const sharer of sharers) sharer.flavour = next
    } else if (isNated(s.flavour) !== isNated(next)) {
      if (sharers.length > 1 || s.carrier !== undefined) {
        throw new Error(`slot ${slot} shares its NAT or sits behind a carrier NAT: it switches between NAT flavours only`)
      }
      await this.unwire(s)
      s.flavour = next
      await this.wire(s)
    }
  }

  async flushConntrack (slot: string): Promise<void> {
    await flushConntrack(this.nat(slot))
    if (this.linkOwner(slot).carrier !== undefined) await flushConntrack(this.carrierNat(slot))
  }

  async movePeer (slot: string, behind: string): Promise<void> {
    const s = this.slot(slot)
    const to = this.linkOwner(behind)
    if (!isNated(s.flavour) || !isNated(to.flavour)) throw new Error(`movePeer: slots ${slot} and ${behind} must both be behind a NAT`)
    if (to === this.linkOwner(slot)) throw new Error(`movePeer: slot ${slot} is behind ${to.name}'s NAT already`)
    if (s.host === undefined && this.sharersOf(s).length > 1) throw new Error(`movePeer: other slots share ${slot}'s NAT; it cannot move away from them`)
    const lanHost = Math.max(...this.sharersOf(to).map(x => x.lanHost)) + 1
    if (lanHost > MAX_LAN_HOSTS) throw new Error(`movePeer: ${to.name}'s LAN is full (${MAX_LAN_HOSTS} hosts)`)
    await moveToLan(this.peer(slot), PEER_IF, this.nat(to.name), `p${s.name}`, lanRouterIp(to.num), lanPeerIp(to.num, lanHost))
    s.host = to.name
    s.lanHost = lanHost
    s.flavour = to.flavour
  }

  async restartNat (slot: string): Promise<void> {
    const owner = this.linkOwner(slot)
    const router = owner.carrier !== undefined ? this.carrierNat(slot) : this.nat(slot)
    const from = this.natWanIp(slot)
    const to = owner.renumbered === true ? slotWanIp(owner.num) : slotRenumberedWanIp(owner.num)
    await renumberWan(router, from, to)
    owner.renumbered = owner.renumbered !== true
    // the inner NAT of a double NAT restarts with it
    if (owner.carrier !== undefined) await flushConntrack(this.nat(slot))
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

  /** the slot that owns the NAT and internet link this slot's peer uses: itself, or the one whose NAT it shares */
  private linkOwner (name: string): Slot {
    const s = this.slot(name)
    return s.host === undefined ? s : this.slot(s.host)
  }

  /** the owner and every slot sharing its NAT, in LAN host order */
  private sharersOf (owner: Slot): Slot[] {
    return [...this.slotState.values()].filter((s) => s.name === owner.name || s.host === owner.name).sort((x, y) => x.lanHost - y.lanHost)
  }

  private assertOwn (ns: string): void {
    if (!this.live.has(ns)) throw new Error(`"${ns}" is not a namespace of this lab`)
  }

  private async addNs (ns: string, sysctls?: string[]): Promise<void> {
    await addNs(ns, sysctls)
    this.live.add(ns)
  }

  /** Plugs `ns` into the internet segment; with `wan`, through a WAN emulator namespace in between. */
  private async plugIntoWan (ns: string, ifName: string, pubSide: string, ip: string, wan?: { slot: string, link: WanLink }): Promise<void> {
    const pub = this.nsOf('pub')
    if (wan === undefined) {
      await addVeth(ns, ifName, pub, pubSide)
    } else {
      const line = this.wanLink(wan.slot)
      await this.addNs(line)
      await addVeth(ns, ifName, line, WAN_LINK_INNER_IF)
      await addVeth(line, WAN_LINK_OUTER_IF, pub, pubSide)
      // the emulator forwards frames one by one: both ends that feed it must hand it wire-sized frames, not
      // 64 KiB GSO batches (which would also make a loss draw drop dozens of packets at once)
      for (const [n, dev] of [[ns, ifName], [pub, pubSide], [line, WAN_LINK_INNER_IF], [line, WAN_LINK_OUTER_IF]] as const) {
        await ipIn(n, ['link', 'set', dev, 'gso_max_segs', '1'])
      }
      await ipIn(line, ['link', 'set', WAN_LINK_INNER_IF, 'up'])
      await ipIn(line, ['link', 'set', WAN_LINK_OUTER_IF, 'up'])
      const child = this.spawnIn(line, 'python3', wanLinkArgs(wan.link), { stdio: ['ignore', 'pipe', 'pipe'] })
      await waitForWanLink(child)
    }
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

  /**
   * Connects the slot's existing peer namespace (and those of the slots sharing its NAT) to the WAN: directly, or
   * through a new NAT router namespace (itself behind a carrier NAT router, for a double NAT).
   */
  private async wire (s: Slot): Promise<void> {
    const wan = s.wan === undefined ? undefined : { slot: s.name, link: s.wan }
    const pubSide = `s${s.name}`
    if (!isNated(s.flavour)) {
      await this.plugIntoWan(this.peer(s.name), PEER_IF, pubSide, slotWanIp(s.num), wan)
      return
    }
    const nat = this.nat(s.name)
    await this.addNs(nat, ROUTER_SYSCTLS)
    if (s.carrier === undefined) {
      await this.plugIntoWan(nat, WAN_IF, pubSide, slotWanIp(s.num), wan)
    } else {
      const cgn = this.carrierNat(s.name)
      await this.addNs(cgn, ROUTER_SYSCTLS)
      await this.plugIntoWan(cgn, WAN_IF, pubSide, slotWanIp(s.num), wan)
      await addLanBridge(cgn, carrierRouterIp(s.num))
      await plugIntoLan(cgn, `h${s.name}`, carrierRouterIp(s.num), nat, WAN_IF, carrierClientIp(s.num))
      await applyFlavour(cgn, s.carrier)
    }
    await addLanBridge(nat, lanRouterIp(s.num))
    // each peer's default route ends at its NAT router; the outermost router has no default route
    for (const sharer of this.sharersOf(s)) {
      await plugIntoLan(nat, `p${sharer.name}`, lanRouterIp(s.num), this.peer(sharer.name), PEER_IF, lanPeerIp(s.num, sharer.lanHost))
    }
    await applyFlavour(nat, s.flavour)
  }

  private async unwire (s: Slot): Promise<void> {
    // deleting a veth end removes its pair right away; a deleted namespace frees its devices only later, and the
    // re-wire reuses the names of the ends in the namespaces that stay (the peer's, the internet segment's)
    await ipIn(this.peer(s.name), ['link', 'del', PEER_IF])
    if (s.wan !== undefined) {
      const line = this.wanLink(s.name)
      await ipIn(line, ['link', 'del', WAN_LINK_OUTER_IF])
      await this.removeNs(line)
    } else if (isNated(s.flavour)) {
      await ipIn(this.nat(s.name), ['link', 'del', WAN_IF])
    }
    if (isNated(s.flavour)) await this.removeNs(this.nat(s.name))
  }

  private async removeNs (ns: string): Promise<void> {
    await delNs(ns)
    this.live.delete(ns)
  }
}

/**
 * Builds a NAT lab out of network namespaces: a bridge "internet" (11.0.113.0/24) with gateways and, per peer slot,
 * either a public peer or a NAT router plus a peer behind it (optionally: more peers on that router's LAN, a carrier NAT
 * in front of it, a WAN emulator on its internet link). Nothing in it has a route out of the lab.
 * On failure everything built so far is removed before the error is thrown.
 */
export async function createTopology (opts: TopologyOptions): Promise<Topology> {
  const { prefix, gateways, slots } = planTopology(opts)

  const taken = (await listNs()).filter((n) => n.startsWith(prefix))
  if (taken.length > 0) {
    throw new Error(`namespaces with prefix "${prefix}" already exist (${taken.join(', ')}): another lab runs with ` +
      'this prefix, or a crashed one left them (cleanupStale removes them)')
  }

  const topo = new NetnsTopology(prefix, gateways, slots)
  try {
    await topo.build()
  } catch (err) {
    await topo.down().catch(() => {})
    throw err
  }
  return topo
}
