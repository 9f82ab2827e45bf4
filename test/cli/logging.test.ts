import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { LabProcess } from '../../src/lab/trial-process.js'
import { LOOPBACK_PEER, startCli, startCliGateway } from '../helpers/cli.js'
import type { CliGateway } from '../helpers/cli.js'

interface LogRecord { level: number, component?: string, msg?: string }

/** a component that logs through libp2p's logger: libp2p's own and natmesh's `natmesh:*` */
const LIBP2P_STYLE = /^(libp2p|natmesh):/

/** Resolves with the first of `process`'s pino JSON log lines (read from now on) that `pred` accepts. */
async function logLine (process: LabProcess, pred: (record: LogRecord) => boolean, what: string): Promise<LogRecord> {
  const lines = createInterface({ input: process.child.stderr as NodeJS.ReadableStream })
  try {
    return await new Promise((resolve, reject) => {
      lines.on('line', line => {
        const record = parse(line)
        if (record != null && pred(record)) resolve(record)
      })
      lines.on('close', () => { reject(new Error(`${process.name} ended its log without ${what}`)) })
    })
  } finally {
    lines.close()
  }
}

function parse (line: string): LogRecord | undefined {
  try {
    return JSON.parse(line) as LogRecord
  } catch {
    return undefined
  }
}

function records (process: LabProcess): LogRecord[] {
  return process.stderr.text().split('\n').map(parse).filter(record => record != null)
}

function startPeer (dir: string, gateway: CliGateway, name: string, extra: string[]): LabProcess {
  return startCli(name, ['peer', '--gateway', gateway.udx, ...LOOPBACK_PEER, '--no-nat-detection', '--station', name,
    '--identity-file', join(dir, `${name}.key`), ...extra], { cwd: dir })
}

describe('one --log-level for natmesh, its natmesh:* components and libp2p', () => {
  let dir: string
  const started: LabProcess[] = []

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'natmesh-logging-'))
  })

  afterAll(async () => {
    await Promise.all(started.map(async process => { await process.stop() }))
    await rm(dir, { recursive: true, force: true })
  })

  it('--log-level debug: libp2p and natmesh:* components log pino JSON records with their name, formatted', async () => {
    const gateway = await startCliGateway(dir, ['--log-level', 'debug'])
    started.push(gateway.process)
    const gatewayLibp2p = logLine(gateway.process, r => r.level === 20 && r.component?.startsWith('libp2p:') === true, 'a libp2p component\'s debug line')
    const peer = startPeer(dir, gateway, 'debug-peer', ['--log-level', 'debug'])
    started.push(peer)
    // `log('peer %p created in %s mode', ...)`: %p is one of libp2p's formatters
    const created = await logLine(peer, r => r.component === 'natmesh:peer' && r.msg?.includes('created') === true, 'natmesh:peer\'s "created" line')
    expect(created).toMatchObject({ level: 20 })
    expect(created.msg).toMatch(/^peer 12D3KooW\w+ created in opportunistic mode$/)
    expect(await gatewayLibp2p).toMatchObject({ level: 20, component: expect.stringMatching(/^libp2p:/), msg: expect.any(String) })
  })

  it('--log-level info: no line of theirs, natmesh\'s own info lines still there', async () => {
    const gateway = await startCliGateway(dir, ['--log-level', 'info'])
    started.push(gateway.process)
    const peer = startPeer(dir, gateway, 'info-peer', ['--log-level', 'info'])
    started.push(peer)
    await peer.waitFor(e => e.event === 'station-published', 30_000, 'station-published')
    await peer.stop()
    // a LabProcess has stopped once its stdio closed: all its log has been read
    await gateway.process.stop()

    const logged = [...records(gateway.process), ...records(peer)]
    expect(logged.filter(r => LIBP2P_STYLE.test(r.component ?? ''))).toEqual([])
    // the gateway's own info line: logging itself is on
    expect(records(gateway.process)).toContainEqual(expect.objectContaining({ level: 30, msg: expect.stringContaining('ICE servers HTTP endpoint off') }))
  })
})
