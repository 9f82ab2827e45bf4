import type { NatMappingProfile } from './mapping-profile.js'
import type { UdpEndpoint } from '../transport/index.js'

/**
 * What the gateways' observations of our one overlay socket say about our NAT's port mapping.
 * - seen at an address of our own, on our own port: no NAT (open);
 * - two or more gateways saw one port: endpoint-independent mapping;
 * - they saw different ports: the NAT picks a port per destination (random, as far as two samples can tell);
 * - one gateway saw our own port: a port-preserving NAT, most likely endpoint-independent;
 * - one gateway saw another port: can't tell (a STUN test against two ports can; see NAT detection).
 */
export function mappingFromObservations (local: { port: number, hosts: readonly string[] }, observed: readonly UdpEndpoint[]): NatMappingProfile {
  if (observed.length === 0) return { kind: 'unknown' }
  if (observed.some(o => local.hosts.includes(o.host) && o.port === local.port)) return { kind: 'open' }
  const ports = new Set(observed.map(o => o.port))
  if (observed.length >= 2) return { kind: ports.size === 1 ? 'endpoint-independent' : 'random' }
  return ports.has(local.port) ? { kind: 'endpoint-independent' } : { kind: 'unknown' }
}
