import type { Endpoint } from '../stun/endpoint.js'

export type { Endpoint }

export const NAT_TYPES = ['no-nat', 'full-cone', 'restricted-cone', 'port-restricted-cone', 'symmetric', 'udp-blocked'] as const
export type NatType = typeof NAT_TYPES[number]

/** RFC 4787 / RFC 5780 terms, for mapping (which mapping a new destination gets) and filtering (who may send in) */
export type Behaviour = 'endpoint-independent' | 'address-dependent' | 'address-and-port-dependent'

/** How the NAT picks the public port of a new mapping: keeps the local port, counts up (by `allocationDelta`), or random */
export type Allocation = 'preserving' | 'sequential' | 'random'

/** A STUN server to test against: a gateway's IP with its two STUN ports */
export interface StunServerAddress {
  host: string
  port: number
  /** used when the server does not name its other port in OTHER-ADDRESS */
  otherPort?: number
}

export interface NatReport {
  natType: NatType
  /** 0..1: how sure the tests that could be run make us; lower when the server has no alternate IP */
  confidence: number
  /** the mapped address the primary STUN server saw; absent when UDP is blocked */
  publicAddress?: Endpoint
  localAddress: Endpoint
  mapping?: Behaviour
  filtering?: Behaviour
  /** the first mapping kept the local port */
  portPreserved?: boolean
  allocation?: Allocation
  /** port step between successive mappings when allocation is sequential */
  allocationDelta?: number
  /** a datagram sent to our own public address came back to us; absent when not tested */
  hairpinning?: boolean
  /** the STUN server that answered (or the first one tried) */
  server: Endpoint
  /** what the tests could not tell, and why */
  notes: string[]
  detectedAt: string
  durationMs: number
}
