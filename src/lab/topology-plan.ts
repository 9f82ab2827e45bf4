/**
 * The plan of a NAT lab, before anything is built: the options a caller gives createTopology, checked against each
 * other, and the numbered slots they describe (which NAT, which LAN host, carrier NAT and WAN emulator each gets).
 */
import { MAX_GATEWAYS, MAX_LAN_HOSTS, MAX_SLOTS } from './addressing.js'
import { isNated, parseFlavour, type NatedFlavour, type NatFlavour } from './nat.js'
import { assertPrefix, REQUIRED_PREFIX } from './netns.js'
import { parseWanLink, type WanLink, type WanLinkOptions } from './wan-link.js'

export interface TopologyOptions {
  /** prefix of every namespace name; must start with "nm-". Default "nm-" */
  prefix?: string
  /** number of gateways, at 11.0.113.10, .11, ... Default 1 */
  gateways?: number
  /** peer slots (names of 1-8 letters/digits) and their NAT flavour, e.g. { A: 'cone', B: 'symmetric' } */
  peers: Record<string, NatFlavour>
  /**
   * Same-site peers: { B: 'A' } puts slot B's peer on slot A's LAN, behind A's NAT (one LAN bridge, addresses
   * 192.168.x.2, .3, ...), so both face the WAN from one public address. The slot's own flavour must be A's.
   */
  sameNatAs?: Record<string, string>
  /**
   * Double NAT: { A: 'symmetric' } puts slot A's NAT router behind a carrier-grade NAT of that flavour (the home
   * NAT's WAN side is 100.64.x.2, the carrier router faces the internet as the slot's WAN address).
   */
  carrierNat?: Record<string, NatedFlavour>
  /**
   * A WAN emulator (lab/wan-link.py: one-way delay, jitter, loss) on a slot's link to the internet segment: its
   * outermost NAT router's WAN link, or a public peer's own link. A slot sharing another's NAT has no link of its own.
   */
  wan?: Record<string, WanLinkOptions>
}

export interface Slot {
  readonly name: string
  /** 1-based; picks the WAN and LAN addresses */
  readonly num: number
  flavour: NatFlavour
  /** the slot whose NAT and LAN this one shares (from the start, or since movePeer); undefined for a slot on its own link */
  host?: string
  /** host number on the LAN (1 = the NAT's own slot) */
  lanHost: number
  /** restartNat gave the slot's router its second WAN address (it alternates between the two) */
  renumbered?: boolean
  readonly carrier?: NatedFlavour
  readonly wan?: WanLink
}

/** Checks the options (prefix, gateway count, slot names and how the slots relate) and numbers the slots. */
export function planTopology (opts: TopologyOptions): { prefix: string, gateways: number, slots: Slot[] } {
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
  return { prefix, gateways, slots: planSlots(opts) }
}

/** Checks the slot options against each other and numbers the slots. */
function planSlots (opts: TopologyOptions): Slot[] {
  const names = Object.keys(opts.peers)
  const known = (what: string, slot: string): void => {
    if (!names.includes(slot)) throw new Error(`${what}: no peer slot "${slot}" (slots: ${names.join(', ')})`)
  }
  const sameNatAs = opts.sameNatAs ?? {}
  const lanHosts = new Map<string, number>()
  for (const [guest, host] of Object.entries(sameNatAs)) {
    known('sameNatAs', guest)
    known(`sameNatAs.${guest}`, host)
    if (sameNatAs[host] !== undefined) throw new Error(`sameNatAs: slot ${host} shares another slot's NAT itself; name the NAT's own slot`)
    const flavour = parseFlavour(opts.peers[host] as string)
    if (!isNated(flavour)) throw new Error(`sameNatAs: slot ${host} is public, it has no NAT to share`)
    if (opts.peers[guest] !== flavour) throw new Error(`sameNatAs: slot ${guest} shares ${host}'s ${flavour} NAT, so its flavour must be ${flavour} too`)
    const n = (lanHosts.get(host) ?? 1) + 1
    if (n > MAX_LAN_HOSTS) throw new Error(`sameNatAs: at most ${MAX_LAN_HOSTS} peers share one NAT`)
    lanHosts.set(host, n)
    lanHosts.set(guest, n)
  }
  for (const [slot, carrier] of Object.entries(opts.carrierNat ?? {})) {
    known('carrierNat', slot)
    if (!isNated(parseFlavour(carrier))) throw new Error(`carrierNat.${slot}: a carrier NAT needs a NAT flavour, not "public"`)
    if (!isNated(parseFlavour(opts.peers[slot] as string))) throw new Error(`carrierNat.${slot}: the slot is public, it has no NAT to put behind a carrier NAT`)
    if (sameNatAs[slot] !== undefined) throw new Error(`carrierNat.${slot}: the slot shares ${sameNatAs[slot]}'s NAT; give the carrier NAT to ${sameNatAs[slot]}`)
  }
  for (const slot of Object.keys(opts.wan ?? {})) {
    known('wan', slot)
    if (sameNatAs[slot] !== undefined) throw new Error(`wan.${slot}: the slot shares ${sameNatAs[slot]}'s NAT and internet link; give the link to ${sameNatAs[slot]}`)
  }
  return names.map((name, i) => {
    const host = sameNatAs[name]
    const carrier = opts.carrierNat?.[name]
    const wan = opts.wan?.[name]
    return {
      name,
      num: i + 1,
      flavour: parseFlavour(opts.peers[name] as string),
      lanHost: host === undefined ? 1 : lanHosts.get(name) as number,
      ...(host !== undefined ? { host } : {}),
      ...(carrier !== undefined ? { carrier } : {}),
      ...(wan !== undefined ? { wan: parseWanLink(wan, `wan.${name}`) } : {})
    }
  })
}
