import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LabProcess } from '../../src/lab/trial-process.js'
import { LOOPBACK_PEER, runCli, startCli, startCliGateway } from '../helpers/cli.js'
import type { CliGateway } from '../helpers/cli.js'

describe('a peer\'s events name peer paths only', () => {
  let root: string
  let home: CliGateway
  let away: CliGateway
  let alpha: LabProcess

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'natmesh-events-'))
    await mkdir(join(root, 'home'))
    await mkdir(join(root, 'away'))
    home = await startCliGateway(join(root, 'home'))
    away = await startCliGateway(join(root, 'away'), ['--bootstrap', home.udx])
    alpha = startCli('alpha', ['peer', '--gateway', home.udx, ...LOOPBACK_PEER, '--no-nat-detection', '--max-gateways', '1', '--station', 'far',
      '--identity-file', join(root, 'alpha.key'), '--no-control-socket'], { cwd: root })
    await alpha.waitFor(e => e.event === 'station-published', 30_000, 'station-published')
  })

  afterAll(async () => {
    await alpha?.stop()
    await Promise.all([home?.process.stop(), away?.process.stop()])
    await rm(root, { recursive: true, force: true })
  })

  it('a dial through a station\'s gateway (not one of ours) reports no connection to that gateway', async () => {
    // beta holds its reservation on the other gateway only; alpha's record sends it through alpha's gateway
    const result = await runCli(['peer', '--gateway', away.udx, ...LOOPBACK_PEER, '--no-nat-detection', '--max-gateways', '1',
      '--identity-file', join(root, 'beta.key'), '--no-control-socket', '--dial', 'station:far'], { cwd: root, timeoutMs: 60_000 })
    const events = result.stdout.trim().split('\n').map(line => JSON.parse(line) as Record<string, unknown>)
    expect(events).toContainEqual(expect.objectContaining({ event: 'dial-result', reached: true }))
    const connections = events.filter(e => e.event === 'connection' || e.event === 'connection-closed')
    expect(connections.length).toBeGreaterThan(0)
    for (const connection of connections) expect(connection.peer).not.toBe(home.peerId)
    expect(result.code).toBe(0)
  })
})
