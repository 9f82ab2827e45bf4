/** How our NAT maps one local port to public ones, as a punch needs to know it. */
export type MappingKind = 'open' | 'endpoint-independent' | 'sequential' | 'random' | 'unknown'

export interface NatMappingProfile {
  kind: MappingKind
  /** the step between successive mappings, when sequential */
  delta?: number
}
