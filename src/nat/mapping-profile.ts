/** How our NAT maps one local port to public ones, as a punch needs to know it. */
export const MAPPING_KINDS = ['open', 'endpoint-independent', 'sequential', 'random', 'unknown'] as const
export type MappingKind = typeof MAPPING_KINDS[number]

export interface NatMappingProfile {
  kind: MappingKind
  /** the step between successive mappings, when sequential */
  delta?: number
}

const PORT_CHANGING: ReadonlySet<MappingKind> = new Set(['sequential', 'random'])

/** a NAT that picks a new public port per destination: a plain punch can't meet it, a birthday punch may */
export function changesPortPerDestination (profile: NatMappingProfile): boolean {
  return PORT_CHANGING.has(profile.kind)
}
