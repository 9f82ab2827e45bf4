import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { execIn } from './netns.js'

/** `public`: the peer sits directly on the WAN, no NAT router at all. The others name lab/nat-rules.sh flavours. */
export const NAT_FLAVOURS = ['public', 'cone', 'symmetric', 'udp-blocked', 'full-cone', 'restricted-cone'] as const
export type NatFlavour = typeof NAT_FLAVOURS[number]
export type NatedFlavour = Exclude<NatFlavour, 'public'>

/** The NAT router's interface names in the namespace lab. */
export const WAN_IF = 'wan0'
export const LAN_IF = 'lan0'

/** lab/nat-rules.sh holds the rules (shared with the docker routers); src/lab and dist/lab both sit two levels down. */
export const NAT_RULES_SCRIPT = fileURLToPath(new URL('../../lab/nat-rules.sh', import.meta.url))

export function isNatFlavour (name: string): name is NatFlavour {
  return (NAT_FLAVOURS as readonly string[]).includes(name)
}

export function parseFlavour (name: string): NatFlavour {
  if (!isNatFlavour(name)) {
    throw new Error(`unknown NAT flavour "${name}" (expected one of: ${NAT_FLAVOURS.join(', ')})`)
  }
  return name
}

export function isNated (flavour: NatFlavour): flavour is NatedFlavour {
  return flavour !== 'public'
}

/** The nftables ruleset for a NAT router of this flavour, as printed by lab/nat-rules.sh. No side effects. */
export function natRuleset (flavour: NatedFlavour, wanIf = WAN_IF, lanIf = LAN_IF): string {
  if (!isNated(parseFlavour(flavour))) throw new Error('flavour "public" has no NAT router and so no ruleset')
  return execFileSync('bash', [NAT_RULES_SCRIPT, flavour, wanIf, lanIf], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** Replaces the NAT rules inside the router namespace, then forgets old mappings so the new flavour applies at once. */
export async function applyFlavour (natNs: string, flavour: NatedFlavour): Promise<void> {
  await execIn(natNs, ['nft', '-f', '-'], { input: natRuleset(flavour) })
  await flushConntrack(natNs)
}

/** Drops every conntrack entry (and so every NAT mapping) inside the router namespace. */
export async function flushConntrack (natNs: string): Promise<void> {
  await execIn(natNs, ['conntrack', '-F'])
}
