import { sameEndpoint } from '../stun/endpoint.js'
import type { Allocation, Behaviour, Endpoint, NatType } from './types.js'

/**
 * The decisions of RFC 5780 §4.3/4.4, kept apart from the sockets so each rule is tested on its own.
 */

/**
 * Mapping behaviour from the mapping the primary server saw (`first`) and the ones seen from another IP
 * (`otherAddress`) and from that IP's other port (`otherAddressAndPort`). With no other IP to test against, the
 * primary IP's other port (`otherPort`) can still prove port dependence, but not rule out address dependence.
 */
export function mappingBehaviour (seen: { first: Endpoint, otherAddress?: Endpoint, otherAddressAndPort?: Endpoint, otherPort?: Endpoint }): { behaviour?: Behaviour, certain: boolean } {
  if (seen.otherAddress != null) {
    if (sameEndpoint(seen.first, seen.otherAddress)) return { behaviour: 'endpoint-independent', certain: true }
    if (seen.otherAddressAndPort == null) return { behaviour: 'address-dependent', certain: false }
    return {
      behaviour: sameEndpoint(seen.otherAddress, seen.otherAddressAndPort) ? 'address-dependent' : 'address-and-port-dependent',
      certain: true
    }
  }
  if (seen.otherPort != null) {
    return sameEndpoint(seen.first, seen.otherPort)
      ? { behaviour: 'endpoint-independent', certain: false }
      : { behaviour: 'address-and-port-dependent', certain: true }
  }
  return { certain: false }
}

/**
 * Filtering behaviour from which CHANGE-REQUEST answers got through: from the other IP and port (only possible when
 * the server has an alternate IP; undefined when not asked) and from the same IP's other port.
 */
export function filteringBehaviour (got: { fromOtherAddressAndPort?: boolean, fromOtherPort: boolean }): { behaviour: Behaviour, certain: boolean } {
  if (got.fromOtherAddressAndPort === true) return { behaviour: 'endpoint-independent', certain: true }
  if (got.fromOtherPort) {
    // without the other-IP test, an endpoint-independent filter looks just the same
    return { behaviour: 'address-dependent', certain: got.fromOtherAddressAndPort === false }
  }
  return { behaviour: 'address-and-port-dependent', certain: true }
}

/** The classic (RFC 3489) names for a mapping/filtering pair */
export function natTypeOf (noNat: boolean, mapping: Behaviour | undefined, filtering: Behaviour): NatType {
  if (noNat) return 'no-nat'
  if (mapping !== 'endpoint-independent') return 'symmetric'
  switch (filtering) {
    case 'endpoint-independent': return 'full-cone'
    case 'address-dependent': return 'restricted-cone'
    case 'address-and-port-dependent': return 'port-restricted-cone'
  }
}

export interface MappingSample {
  localPort: number
  mappedPort: number
}

/** a constant step larger than this is not a counter but coincidence */
const MAX_SEQUENTIAL_DELTA = 16

/**
 * Port allocation from successive new mappings, in the order they were made: every mapping kept its local port
 * (preserving), the public port moved by the same small step each time (sequential), or neither (random).
 */
export function allocationOf (samples: readonly MappingSample[]): { allocation?: Allocation, delta?: number } {
  if (samples.length === 0) return {}
  if (samples.every(s => s.localPort === s.mappedPort)) return { allocation: 'preserving' }
  const deltas = samples.slice(1).map((s, i) => s.mappedPort - (samples[i] as MappingSample).mappedPort)
  const delta = deltas[0]
  if (deltas.length >= 2 && delta != null && delta !== 0 && Math.abs(delta) <= MAX_SEQUENTIAL_DELTA && deltas.every(d => d === delta)) {
    return { allocation: 'sequential', delta }
  }
  return { allocation: 'random' }
}
