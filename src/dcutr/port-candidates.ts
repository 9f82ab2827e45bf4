/** NATs allocate public ports above the well-known range (Linux: 1024-65535 for masquerade). */
export const FIRST_PORT = 1024
export const LAST_PORT = 65535

/**
 * The order a birthday prober tries ports in: first `predicted` ones (a sequential NAT's next allocations after
 * the last port seen), then every other port once, in random order. Lazy: a punch uses a few hundred at most.
 */
export function * portCandidates (predicted: readonly number[] = [], random: () => number = Math.random): Generator<number> {
  const tried = new Set<number>()
  for (const port of predicted) {
    if (!Number.isInteger(port) || port < FIRST_PORT || port > LAST_PORT || tried.has(port)) continue
    tried.add(port)
    yield port
  }
  // a Fisher-Yates shuffle done one step at a time over the whole range
  const ports = new Uint16Array(LAST_PORT - FIRST_PORT + 1).map((_, i) => FIRST_PORT + i)
  for (let left = ports.length; left > 0; left--) {
    const pick = Math.floor(random() * left)
    const port = ports[pick] ?? 0
    ports[pick] = ports[left - 1] ?? 0
    if (!tried.has(port)) yield port
  }
}

/** A sequential NAT's next `count` allocations after `lastPort`, stepping by `delta`. */
export function predictedPorts (lastPort: number, delta: number, count: number): number[] {
  const ports: number[] = []
  for (let k = 1; k <= count; k++) {
    const port = lastPort + k * delta
    if (port < FIRST_PORT || port > LAST_PORT) break
    ports.push(port)
  }
  return ports
}
