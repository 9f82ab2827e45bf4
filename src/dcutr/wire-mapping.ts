import { NatMapping } from './pb/hole-punch.js'
import type { MappingKind, NatMappingProfile } from '../nat/mapping-profile.js'

const toWire: Record<MappingKind, NatMapping.Kind> = {
  unknown: NatMapping.Kind.UNKNOWN,
  open: NatMapping.Kind.OPEN,
  'endpoint-independent': NatMapping.Kind.ENDPOINT_INDEPENDENT,
  sequential: NatMapping.Kind.SEQUENTIAL,
  random: NatMapping.Kind.RANDOM
}

const fromWire: Record<NatMapping.Kind, MappingKind> = {
  [NatMapping.Kind.UNKNOWN]: 'unknown',
  [NatMapping.Kind.OPEN]: 'open',
  [NatMapping.Kind.ENDPOINT_INDEPENDENT]: 'endpoint-independent',
  [NatMapping.Kind.SEQUENTIAL]: 'sequential',
  [NatMapping.Kind.RANDOM]: 'random'
}

/** A step bigger than this is no prediction worth probing for. */
const MAX_DELTA = 1024

export function toWireMapping (profile: NatMappingProfile): NatMapping {
  return { kind: toWire[profile.kind], ...(profile.kind === 'sequential' && profile.delta != null ? { delta: profile.delta } : {}) }
}

/** Whatever a remote sends (nothing, from other implementations; garbage, from hostile ones) maps to a known kind. */
export function fromWireMapping (wire: NatMapping | undefined): NatMappingProfile {
  const kind = wire?.kind != null ? fromWire[wire.kind] ?? 'unknown' : 'unknown'
  const delta = wire?.delta
  if (kind === 'sequential' && delta != null && Number.isInteger(delta) && delta !== 0 && Math.abs(delta) <= MAX_DELTA) return { kind, delta }
  return { kind: kind === 'sequential' ? 'random' : kind }
}
