/** A benchmark's numeric option as a positive integer; anything else stops the benchmark with a clear message. */
export function positiveInteger (args: Record<string, unknown>, name: string): number {
  const value = Number(args[name])
  if (!Number.isInteger(value) || value <= 0) {
    console.error(`--${name} must be a positive integer, got ${JSON.stringify(args[name])}`)
    process.exit(2)
  }
  return value
}
