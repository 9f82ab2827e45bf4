import type { PeerEvent } from '../peer/events.js'

/** Daemon events: JSON lines on stdout with --json (for scripts and the lab), readable lines otherwise. */
export function printEvent (event: PeerEvent | Record<string, unknown> & { event: string }, json: boolean): void {
  if (json) {
    process.stdout.write(JSON.stringify({ time: new Date().toISOString(), ...event }) + '\n')
    return
  }
  const { event: name, ...fields } = event
  const details = Object.entries(fields)
    .map(([key, value]) => `${key}=${Array.isArray(value) ? value.join(',') : String(value)}`)
    .join(' ')
  process.stdout.write(`${new Date().toISOString().slice(11, 23)} ${name} ${details}\n`)
}
