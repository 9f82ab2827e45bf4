import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { NAT_FLAVOURS, NAT_RULES_SCRIPT, isNated, natRuleset, parseFlavour, type NatedFlavour } from '../../src/lab/index.js'

const NATED = NAT_FLAVOURS.filter(isNated)

/** the ruleset's rule lines, without comments and indentation */
const rules = (text: string): string[] => text.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'))

describe('NAT flavours', () => {
  it('accepts every known flavour and names the valid ones when rejecting', () => {
    for (const f of NAT_FLAVOURS) expect(parseFlavour(f)).toBe(f)
    expect(() => parseFlavour('half-cone')).toThrow('unknown NAT flavour "half-cone" (expected one of: public, cone, symmetric, udp-blocked, full-cone, restricted-cone)')
    expect(() => parseFlavour('Cone')).toThrow(/unknown NAT flavour/)
  })

  it('knows exactly the NAT flavours lab/nat-rules.sh knows', () => {
    const listed = execFileSync('bash', [NAT_RULES_SCRIPT, '--list'], { encoding: 'utf8' }).trim().split('\n')
    expect(listed).toEqual(NATED)
  })
})

describe('natRuleset', () => {
  it('cone: port-preserving masquerade, no UDP block', () => {
    const r = rules(natRuleset('cone'))
    expect(r).toContain('oifname "wan0" masquerade')
    expect(r.join('\n')).not.toMatch(/fully-random|l4proto udp/)
  })

  it('symmetric: masquerade with a random port per mapping', () => {
    expect(rules(natRuleset('symmetric'))).toContain('oifname "wan0" masquerade fully-random')
  })

  it('udp-blocked: drops UDP towards the WAN before LAN traffic is accepted', () => {
    const r = rules(natRuleset('udp-blocked'))
    expect(r).toContain('oifname "wan0" masquerade')
    const drop = r.indexOf('oifname "wan0" meta l4proto udp drop')
    expect(drop).toBeGreaterThan(-1)
    expect(drop).toBeLessThan(r.indexOf('iifname "lan0" oifname "wan0" accept'))
  })

  it.each(NATED)('%s: home-router filtering in its own table only', (flavour: NatedFlavour) => {
    const r = rules(natRuleset(flavour))
    // replaces the natmesh table, never the whole ruleset (docker keeps its DNS rules in a container's namespace)
    expect(r.slice(0, 3)).toEqual(['add table ip natmesh', 'delete table ip natmesh', 'table ip natmesh {'])
    expect(r.join('\n')).not.toMatch(/flush ruleset/)
    expect(r).toContain('type filter hook forward priority filter; policy drop;')
    expect(r).toContain('ct state invalid drop')
    expect(r).toContain('iifname "wan0" oifname "lan0" ct state established,related accept')
    expect(r).toContain('iifname "wan0" ct state established,related accept')
    expect(r).toContain('iifname "wan0" drop')
    expect(natRuleset(flavour)).toBe(natRuleset(flavour))
  })

  it('uses the interface names it is given (the docker routers have their own)', () => {
    const r = rules(natRuleset('cone', 'eth1', 'eth0'))
    expect(r).toContain('oifname "eth1" masquerade')
    expect(r).toContain('iifname "eth0" oifname "eth1" accept')
    expect(r.join('\n')).not.toMatch(/wan0|lan0/)
  })

  it('refuses interface names that could inject rules, and the flavour without a router', () => {
    expect(() => natRuleset('cone', 'wan0" accept; flush ruleset; "', 'lan0')).toThrow(/invalid interface name/)
    expect(() => natRuleset('cone', 'wan0', 'a-name-too-long-for-linux')).toThrow(/invalid interface name/)
    expect(() => natRuleset('public' as NatedFlavour)).toThrow(/public.*no NAT router/)
    expect(() => natRuleset('bogus' as NatedFlavour)).toThrow(/unknown NAT flavour "bogus"/)
  })
})
