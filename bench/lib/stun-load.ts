/**
 * Closed-loop STUN load: keeps `window` Binding requests in flight from one UDP socket (one source IP:port),
 * sends a new one for every answer, and counts a request unanswered after `lostAfterMs` as lost (and replaces it).
 * Returns the answered requests per second: with the server's rate limit off, what it can serve; with it on,
 * what one source IP is granted. Reusable by any benchmark that has a STUN server address (bench:ice).
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { createSocket } from 'node:dgram'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { fileURLToPath } from 'node:url'
import { bindingRequest } from '../../dist/stun/codec.js'

const CLI = fileURLToPath(new URL('../../dist/cli/index.js', import.meta.url))

export interface StunLoadOptions {
  target: { address: string, port: number }
  durationMs: number
  /** requests in flight (default 64) */
  window?: number
  /** the load's source IP (default 127.0.0.1) */
  sourceAddress?: string
  /** default 500 */
  lostAfterMs?: number
}

export interface StunLoadResult {
  requestsPerSecond: number
  sent: number
  answered: number
  lost: number
  durationMs: number
}

/** the transaction id of a STUN message: bytes 8..20 */
const transactionKey = (datagram: Buffer): string => datagram.subarray(8, 20).toString('hex')

export async function measureStunRate (options: StunLoadOptions): Promise<StunLoadResult> {
  const window = options.window ?? 64
  const lostAfterMs = options.lostAfterMs ?? 500
  const socket = createSocket('udp4')
  socket.on('error', () => {})
  await new Promise<void>((resolve) => { socket.bind(0, options.sourceAddress ?? '127.0.0.1', resolve) })
  const inFlight = new Map<string, number>()
  let sent = 0
  let answered = 0
  let lost = 0
  let running = true
  const send = (): void => {
    const id = randomBytes(12)
    inFlight.set(id.toString('hex'), performance.now())
    sent++
    socket.send(bindingRequest(id), options.target.port, options.target.address)
  }
  socket.on('message', (datagram) => {
    if (!inFlight.delete(transactionKey(datagram))) return
    answered++
    if (running) send()
  })
  const started = performance.now()
  const refill = setInterval(() => {
    const now = performance.now()
    for (const [key, sentAt] of inFlight) {
      if (now - sentAt < lostAfterMs) continue
      inFlight.delete(key)
      lost++
    }
    while (running && inFlight.size < window) send()
  }, 50)
  while (inFlight.size < window) send()
  await new Promise(resolve => setTimeout(resolve, options.durationMs))
  running = false
  const durationMs = performance.now() - started
  clearInterval(refill)
  socket.close()
  return { requestsPerSecond: Math.round(answered / (durationMs / 1000)), sent, answered, lost: lost + inFlight.size, durationMs: Math.round(durationMs) }
}

/**
 * Runs a real `natmesh gateway` process on loopback (STUN on ephemeral ports) with the given STUN flags, loads
 * its primary STUN port with measureStunRate, and stops it.
 */
export async function measureGatewayStunRate (stunFlags: string[], options: { durationMs: number, window?: number }): Promise<StunLoadResult> {
  const dir = await mkdtemp(join(tmpdir(), 'natmesh-bench-stun-'))
  const gateway = spawn(process.execPath, [
    CLI, 'gateway', '--host', '127.0.0.1', '--udp-port', '0', '--tcp-port', '0', '--api', '127.0.0.1:0',
    '--stun-port', '0', '--stun-other-port', '0', '--identity-file', join(dir, 'gateway.key'), '--json', '--log-level', 'warn', ...stunFlags
  ], { stdio: ['ignore', 'pipe', 'inherit'] })
  try {
    const stun = await new Promise<string>((resolve, reject) => {
      gateway.once('exit', (code) => { reject(new Error(`gateway exited (${code}) before it started`)) })
      createInterface({ input: gateway.stdout }).on('line', (line) => {
        const event = JSON.parse(line) as { event: string, stun?: string[] }
        if (event.event === 'gateway-started' && event.stun?.[0] != null) resolve(event.stun[0])
      })
    })
    const [address, port] = stun.split(':')
    return await measureStunRate({ target: { address: address as string, port: Number(port) }, ...options })
  } finally {
    gateway.kill('SIGTERM')
    await rm(dir, { recursive: true, force: true })
  }
}
