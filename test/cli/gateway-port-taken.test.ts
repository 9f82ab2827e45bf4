import { execFile } from 'node:child_process'
import { createSocket } from 'node:dgram'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterEach, expect, it } from 'vitest'
import type { Socket } from 'node:dgram'

/** Runs the CLI as a user starts it (needs a built dist/; `npm test` builds it). */
const BIN = new URL('../../bin/natmesh.js', import.meta.url).pathname

let socket: Socket | undefined
let dir: string | undefined
afterEach(async () => {
  socket?.close()
  if (dir != null) await rm(dir, { recursive: true, force: true })
})

it('a gateway whose UDP port is taken names the port and the flag, and exits non-zero', async () => {
  socket = createSocket('udp4')
  const taken = await new Promise<number>((resolve, reject) => {
    socket?.once('error', reject)
    socket?.bind(0, '127.0.0.1', () => { resolve(socket!.address().port) })
  })
  dir = await mkdtemp(join(tmpdir(), 'natmesh-port-taken-'))

  const run = promisify(execFile)(process.execPath, [BIN, 'gateway', '--host', '127.0.0.1', '--udp-port', String(taken), '--tcp-port', '0',
    '--api', '127.0.0.1:0', '--no-stun', '--identity-file', join(dir, 'gw.key')], { timeout: 30_000 })
  const failure = await run.then(() => undefined, (err: { code?: number, stderr: string }) => err)

  expect(failure?.code).toBe(1)
  expect(failure?.stderr).not.toContain('faultTolerance')
  expect(failure?.stderr.trim().split('\n').at(-1)).toBe(`natmesh: gateway cannot listen: UDP port ${taken} on 127.0.0.1 is already in use: choose another with --udp-port`)
})
