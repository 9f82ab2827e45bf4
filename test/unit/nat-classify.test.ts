import { describe, expect, it } from 'vitest'
import { allocationOf, filteringBehaviour, mappingBehaviour, natTypeOf } from '../../src/nat/classify.js'
import { modeAdvice } from '../../src/nat/describe.js'
import { gatewayStunServers } from '../../src/nat/gateway-stun-servers.js'
import type { NatReport } from '../../src/nat/types.js'

const at = (port: number): { address: string, port: number } => ({ address: '11.0.113.21', port })

describe('mapping behaviour (RFC 5780 §4.3)', () => {
  it('is endpoint-independent when another IP sees the same mapping', () => {
    expect(mappingBehaviour({ first: at(5000), otherAddress: at(5000) })).toEqual({ behaviour: 'endpoint-independent', certain: true })
  })

  it('tells address- from address-and-port-dependent by the other IP\'s other port', () => {
    expect(mappingBehaviour({ first: at(5000), otherAddress: at(6000), otherAddressAndPort: at(6000) })).toEqual({ behaviour: 'address-dependent', certain: true })
    expect(mappingBehaviour({ first: at(5000), otherAddress: at(6000), otherAddressAndPort: at(7000) })).toEqual({ behaviour: 'address-and-port-dependent', certain: true })
  })

  it('with only another port: proves port dependence, but an unchanged mapping is only probably endpoint-independent', () => {
    expect(mappingBehaviour({ first: at(5000), otherPort: at(5001) })).toEqual({ behaviour: 'address-and-port-dependent', certain: true })
    expect(mappingBehaviour({ first: at(5000), otherPort: at(5000) })).toEqual({ behaviour: 'endpoint-independent', certain: false })
    expect(mappingBehaviour({ first: at(5000) })).toEqual({ certain: false })
  })
})

describe('filtering behaviour (RFC 5780 §4.4)', () => {
  it('follows which CHANGE-REQUEST answers got through', () => {
    expect(filteringBehaviour({ fromOtherAddressAndPort: true, fromOtherPort: true })).toEqual({ behaviour: 'endpoint-independent', certain: true })
    expect(filteringBehaviour({ fromOtherAddressAndPort: false, fromOtherPort: true })).toEqual({ behaviour: 'address-dependent', certain: true })
    expect(filteringBehaviour({ fromOtherAddressAndPort: false, fromOtherPort: false })).toEqual({ behaviour: 'address-and-port-dependent', certain: true })
  })

  it('without an alternate IP, an answer from the other port cannot rule out endpoint-independent filtering', () => {
    expect(filteringBehaviour({ fromOtherPort: true })).toEqual({ behaviour: 'address-dependent', certain: false })
    expect(filteringBehaviour({ fromOtherPort: false })).toEqual({ behaviour: 'address-and-port-dependent', certain: true })
  })
})

describe('NAT type', () => {
  it('names the classic types from mapping and filtering', () => {
    expect(natTypeOf(true, 'endpoint-independent', 'address-and-port-dependent')).toBe('no-nat')
    expect(natTypeOf(false, 'endpoint-independent', 'endpoint-independent')).toBe('full-cone')
    expect(natTypeOf(false, 'endpoint-independent', 'address-dependent')).toBe('restricted-cone')
    expect(natTypeOf(false, 'endpoint-independent', 'address-and-port-dependent')).toBe('port-restricted-cone')
    expect(natTypeOf(false, 'address-dependent', 'address-dependent')).toBe('symmetric')
    expect(natTypeOf(false, 'address-and-port-dependent', 'endpoint-independent')).toBe('symmetric')
  })
})

describe('port allocation', () => {
  it('is preserving when every mapping kept its local port', () => {
    expect(allocationOf([{ localPort: 4000, mappedPort: 4000 }, { localPort: 4100, mappedPort: 4100 }])).toEqual({ allocation: 'preserving' })
  })

  it('is sequential with a constant small step, and says the step', () => {
    expect(allocationOf([{ localPort: 4000, mappedPort: 30000 }, { localPort: 4000, mappedPort: 30002 }, { localPort: 5000, mappedPort: 30004 }]))
      .toEqual({ allocation: 'sequential', delta: 2 })
  })

  it('is random otherwise, and needs three mappings to call a step a step', () => {
    expect(allocationOf([{ localPort: 1, mappedPort: 30000 }, { localPort: 1, mappedPort: 30001 }])).toEqual({ allocation: 'random' })
    expect(allocationOf([{ localPort: 1, mappedPort: 30000 }, { localPort: 1, mappedPort: 41000 }, { localPort: 2, mappedPort: 52000 }])).toEqual({ allocation: 'random' })
    expect(allocationOf([])).toEqual({})
  })
})

describe('mode advice', () => {
  const report = (natType: NatReport['natType']): NatReport => ({
    natType, confidence: 0.9, localAddress: at(1), server: at(3478), notes: [], detectedAt: '', durationMs: 0
  })

  it('relay-only works with a reachable gateway; hole punching needs UDP and a cone; ICE needs UDP and TURN for symmetric NATs', () => {
    const verdicts = (natType: NatReport['natType'], turn: boolean): string[] => modeAdvice(report(natType), { reachable: true, turn }).map(a => `${a.mode}:${a.verdict}`)
    expect(verdicts('port-restricted-cone', true)).toEqual(['relay-only:works', 'opportunistic:works', 'ice:works'])
    expect(verdicts('symmetric', true)).toEqual(['relay-only:works', 'opportunistic:partly', 'ice:works'])
    expect(verdicts('symmetric', false)).toEqual(['relay-only:works', 'opportunistic:partly', 'ice:partly'])
    expect(verdicts('udp-blocked', true)).toEqual(['relay-only:works', 'opportunistic:no', 'ice:no'])
  })

  it('advises TURN only where a gateway runs it, never TURN over TCP', () => {
    for (const natType of ['no-nat', 'full-cone', 'port-restricted-cone', 'symmetric', 'udp-blocked'] as const) {
      const without = modeAdvice(report(natType), { reachable: true, turn: false }).map(a => a.why).join(' ')
      expect(without).not.toMatch(/TURN (relay|covers)|through the gateway's TURN/)
      const all = without + modeAdvice(report(natType), { reachable: true, turn: true }).map(a => a.why).join(' ')
      expect(all).not.toMatch(/TURN over TCP/)
    }
  })

  it('no mode works when no gateway answers a libp2p dial', () => {
    expect(modeAdvice(report('no-nat'), { reachable: false, turn: true }).map(a => a.verdict)).toEqual(['no', 'no', 'no'])
  })
})

describe('gateway STUN servers', () => {
  const id = '12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo'
  it('one server per distinct gateway IP, on the configured ports', () => {
    expect(gatewayStunServers([`/ip4/11.0.113.10/udp/4001/udx/p2p/${id}`, `/ip4/11.0.113.10/tcp/4001/p2p/${id}`, `/ip4/11.0.113.11/tcp/4001/p2p/${id}`, `/dns4/gw.example/tcp/4001/p2p/${id}`], [3478, 3479]))
      .toEqual([{ host: '11.0.113.10', port: 3478, otherPort: 3479 }, { host: '11.0.113.11', port: 3478, otherPort: 3479 }])
    expect(gatewayStunServers([`/ip4/11.0.113.10/tcp/4001/p2p/${id}`], [5000])).toEqual([{ host: '11.0.113.10', port: 5000 }])
  })
})
