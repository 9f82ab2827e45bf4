import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LabProcess } from '../../src/lab/trial-process.js'
import { LOOPBACK_PEER, runCli, startCli, startCliGateway, systemNode } from '../helpers/cli.js'
import type { CliGateway } from '../helpers/cli.js'

/**
 * Stopping a peer the ways a service manager does. Its station must be withdrawn and it must exit 0, also when
 * the machine's Node is older than 22 and bin/natmesh.js runs the bundled Node as its child: systemd's default
 * KillMode=control-group (and `timeout`) sends SIGTERM to the launcher and the child at once.
 */
describe('SIGTERM shuts a peer started through bin/natmesh.js down cleanly', () => {
  let dir: string
  let gateway: CliGateway
  const node = systemNode()

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'natmesh-shutdown-'))
    gateway = await startCliGateway(dir)
  })

  afterAll(async () => {
    await gateway?.process.stop()
    await rm(dir, { recursive: true, force: true })
  })

  /** the bundled Node the launcher started, or the launcher itself when the system Node is new enough */
  async function daemonPid (launcher: LabProcess): Promise<number> {
    const pid = launcher.child.pid as number
    const children = (await readFile(`/proc/${pid}/task/${pid}/children`, 'utf8')).trim().split(/\s+/).filter(c => c !== '')
    return children.length > 0 ? Number(children[0]) : pid
  }

  const cases: Array<[string, (launcher: LabProcess) => Promise<void>]> = [
    // what systemd does with KillMode=control-group: kill(-pgid, SIGTERM) on a service started in its own group
    ['the whole process group', async (launcher) => { process.kill(-(launcher.child.pid as number), 'SIGTERM') }],
    ['only the launcher', async (launcher) => { process.kill(launcher.child.pid as number, 'SIGTERM') }],
    ['only the child', async (launcher) => { process.kill(await daemonPid(launcher), 'SIGTERM') }]
  ]

  it.each(cases)('SIGTERM to %s: station withdrawn, exit code 0', async (_what, terminate) => {
    const station = `svc-${Math.random().toString(36).slice(2, 8)}`
    const peer = startCli('peer', ['peer', '--gateway', gateway.udx, ...LOOPBACK_PEER, '--no-nat-detection', '--station', station,
      '--identity-file', join(dir, `${station}.key`)], { cwd: dir, node, detached: true })
    try {
      await peer.waitFor(e => e.event === 'station-published', 30_000, 'station-published')
      await terminate(peer)
      await peer.whenExited()
    } finally {
      if (peer.running) process.kill(-(peer.child.pid as number), 'SIGKILL')
    }
    expect(peer.stderr.text()).not.toContain('exiting now')
    expect(peer.find(e => e.event === 'station-withdrawn')).toMatchObject({ name: station, gateways: 1 })
    expect(peer.find(e => e.event === 'stopped')).toMatchObject({ clean: true })
    expect(peer.exitCode).toBe(0)
    // and the DHT says so: a lookup finds the withdrawal, not a live station
    const lookup = await runCli(['lookup', station, '--gateway', gateway.udx, '--json'], { cwd: dir })
    expect(JSON.parse(lookup.stdout)).toMatchObject({ name: station, found: false, withdrawn: true })
    expect(lookup.code).toBe(1)
  })
})
