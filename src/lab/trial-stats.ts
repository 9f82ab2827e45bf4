/**
 * Nearest-rank percentile (p in 0..100) of the values; undefined when there are none. Nearest rank never
 * invents a value between two samples, which keeps small-sample numbers (20 trials) honest.
 */
export function percentile (values: readonly number[], p: number): number | undefined {
  if (values.length === 0) return undefined
  if (!(p >= 0 && p <= 100)) throw new Error(`percentile must be 0..100, got ${p}`)
  const sorted = [...values].sort((x, y) => x - y)
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length))
  return sorted[rank - 1]
}

/** The usual median: the mean of the two middle values for an even count. */
export function median (values: readonly number[]): number | undefined {
  if (values.length === 0) return undefined
  const sorted = [...values].sort((x, y) => x - y)
  const mid = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[mid] : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}
