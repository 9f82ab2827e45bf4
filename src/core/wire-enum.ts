/**
 * A protobuf enum and natmesh's names for it, read both ways. A name's wire value is the enum member of the same
 * name in upper snake case (`endpoint-independent` is ENDPOINT_INDEPENDENT) unless `exceptions` says otherwise. A
 * value read off the wire that no name has (a newer peer's, a hostile one's) reads as undefined, never as a guess.
 */
export interface WireEnum<W, N extends string> {
  name: (wire: W | undefined) => N | undefined
  wire: (name: N) => W
}

/** `members`: the enum object (protons adds a `codec` to it, which no name reaches) */
export function wireEnum<W, N extends string> (members: object, names: readonly N[], exceptions: Partial<Record<N, W>> = {}): WireEnum<W, N> {
  const byUpperName = members as Record<string, W | undefined>
  const byName = new Map<N, W>(names.map(name => {
    const wire = exceptions[name] ?? byUpperName[name.toUpperCase().replaceAll('-', '_')]
    if (wire == null) throw new Error(`the wire enum has no member for "${name}"`)
    return [name, wire]
  }))
  const byWire = new Map<W, N>([...byName].map(([name, wire]) => [wire, name]))
  return {
    name: wire => wire == null ? undefined : byWire.get(wire),
    wire: name => byName.get(name) as W
  }
}
