import { describe, expect, it } from 'vitest'
import { OwnNat } from '../../src/nat/own-nat.js'
import type { UdpEndpoint } from '../../src/transport/index.js'

/** OwnNat's mapping cascade with NAT detection off: what is configured, else what the gateways observed. */
function ownNat (configured: ConstructorParameters<typeof OwnNat>[0]['configured'], observed: UdpEndpoint[], listening?: UdpEndpoint): OwnNat {
  return new OwnNat({ configured, observations: () => ({ ...(listening != null ? { listening } : {}), observed }) })
}

const LISTENING: UdpEndpoint = { host: '0.0.0.0', port: 40_000, family: 4 }
// documentation addresses (RFC 5737): no interface of this host has them
const PUBLIC = '203.0.113.7'
const at = (port: number): UdpEndpoint => ({ host: PUBLIC, port, family: 4 })

describe('OwnNat.mapping', () => {
  it('takes a configured mapping as it is, the step included, whatever was observed', async () => {
    const nat = ownNat({ kind: 'sequential', delta: 2 }, [at(1), at(9)], LISTENING)
    expect(await nat.mapping()).toEqual({ kind: 'sequential', delta: 2 })
    expect(await ownNat({ kind: 'random' }, [], LISTENING).mapping()).toEqual({ kind: 'random' })
  })

  it('auto without detection: two gateways that saw one public port mean endpoint-independent, two ports random', async () => {
    expect(await ownNat({ kind: 'auto' }, [at(50_000), at(50_000)], LISTENING).mapping()).toEqual({ kind: 'endpoint-independent' })
    expect(await ownNat({ kind: 'auto' }, [at(50_000), at(50_001)], LISTENING).mapping()).toEqual({ kind: 'random' })
  })

  it('auto without detection, nothing observed or no socket listening yet: unknown', async () => {
    expect(await ownNat({ kind: 'auto' }, [], LISTENING).mapping()).toEqual({ kind: 'unknown' })
    expect(await ownNat({ kind: 'auto' }, [at(50_000), at(50_000)]).mapping()).toEqual({ kind: 'unknown' })
  })

  it('has no report when detection is off', async () => {
    const nat = ownNat({ kind: 'auto' }, [])
    nat.start()
    expect(nat.report()).toBeUndefined()
    expect(await nat.detect()).toBeUndefined()
    nat.stop()
  })
})
