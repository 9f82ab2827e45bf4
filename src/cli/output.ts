import type { PeerEvent } from '../peer/events.js'

/** Daemon events: JSON lines on stdout with --json (for scripts and the lab), readable lines otherwise. */
export function printEvent (event: PeerEvent | Record<string, unknown> & { event: string }, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify({ time: new Date().toISOString(), ...event }) + '\n')
    return
  }
  const { event: name, ...fields } = event
  process.stdout.write(`${new Date().toISOString().slice(11, 23)} ${name} ${formatFields(fields)}\n`)
}

/** `key=value` pairs; nested objects as `key.inner=value` (`cost.sockets=256`), fractions to two decimals */
export function formatFields (fields: Record<string, unknown>, prefix = ''): string {
  return Object.entries(fields)
    .filter(([, value]) => value !== undefined)
    .map(([key, value]) => isObject(value) ? formatFields(value, `${prefix}${key}.`) : `${prefix}${key}=${formatValue(value)}`)
    .join(' ')
}

export function formatValue (value: unknown): string {
  if (Array.isArray(value)) return value.map(formatValue).join(',')
  if (typeof value === 'number' && !Number.isInteger(value)) return String(Math.round(value * 100) / 100)
  if (isObject(value)) return JSON.stringify(value)
  return String(value)
}

function isObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value != null && !Array.isArray(value)
}
