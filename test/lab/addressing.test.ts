import { describe, expect, it } from 'vitest'
import { createTopology, gatewayAltIp, gatewayIp, lanPeerIp, lanRouterIp, slotWanIp } from '../../src/lab/index.js'

describe('lab address plan', () => {
  it('puts gateways at .10+, slots at .20+ on the WAN and on 192.168.<slot>.0/24 behind their NAT', () => {
    expect([gatewayIp(0), gatewayIp(1), gatewayIp(9)]).toEqual(['11.0.113.10', '11.0.113.11', '11.0.113.19'])
    expect([slotWanIp(1), slotWanIp(2), slotWanIp(99)]).toEqual(['11.0.113.21', '11.0.113.22', '11.0.113.119'])
    expect([lanRouterIp(2), lanPeerIp(2)]).toEqual(['192.168.2.1', '192.168.2.2'])
    // gateways' second addresses sit above every slot's
    expect([gatewayAltIp(0), gatewayAltIp(9)]).toEqual(['11.0.113.200', '11.0.113.209'])
  })

  it('rejects addresses outside the plan', () => {
    expect(() => gatewayIp(10)).toThrow(/out of range/)
    expect(() => gatewayIp(-1)).toThrow(/out of range/)
    expect(() => gatewayAltIp(10)).toThrow(/out of range/)
    expect(() => slotWanIp(0)).toThrow(/out of range/)
    expect(() => slotWanIp(100)).toThrow(/out of range/)
  })
})

describe('createTopology validation (before anything is built)', () => {
  it('requires the nm- prefix, sane slot names and flavours', async () => {
    await expect(createTopology({ prefix: 'lab-', peers: {} })).rejects.toThrow(/must start with "nm-"/)
    await expect(createTopology({ prefix: 'nm-$(reboot)', peers: {} })).rejects.toThrow(/must start with "nm-"/)
    await expect(createTopology({ gateways: 11, peers: {} })).rejects.toThrow(/gateways must be 0\.\.10/)
    await expect(createTopology({ peers: { 'A B': 'cone' } })).rejects.toThrow(/slot name "A B"/)
    await expect(createTopology({ peers: { A: 'half-cone' as 'cone' } })).rejects.toThrow(/unknown NAT flavour "half-cone"/)
  })
})
