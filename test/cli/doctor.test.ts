import { mkdir, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { runCli, startCliGateway } from '../helpers/cli.js'
import type { CliGateway } from '../helpers/cli.js'
import { freeUdpTcpPort } from '../helpers/free-port.js'

/** `natmesh doctor` against real gateways on 127.0.0.1: one without TURN, one running coturn */
describe('natmesh doctor', () => {
  let root: string
  let plain: CliGateway
  let withTurn: CliGateway

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'natmesh-doctor-'))
    await mkdir(join(root, 'plain'))
    await mkdir(join(root, 'turn'))
    plain = await startCliGateway(join(root, 'plain'))
    withTurn = await startCliGateway(join(root, 'turn'), ['--turn', '--turn-port', String(await freeUdpTcpPort()), '--turn-external-ip', '127.0.0.1',
      '--turn-secret-file', join(root, 'turn', 'turn-secret')])
  })

  afterAll(async () => {
    await Promise.all([plain?.process.stop(), withTurn?.process.stop()])
    await rm(root, { recursive: true, force: true })
  })

  const stunPorts = (gateway: CliGateway): string => gateway.stun.map(endpoint => endpoint.split(':').at(-1)).join(',')

  it('dials the gateway\'s UDP overlay and TCP ports with libp2p, reports their RTT, and advises no TURN it does not run', async () => {
    const result = await runCli(['doctor', '--gateway', `${plain.udx},${plain.tcp}`, '--stun-ports', stunPorts(plain), '--json'], { cwd: root })
    expect(result.code).toBe(0)
    const report = JSON.parse(result.stdout)
    expect(report.gateways).toEqual([{
      peerId: plain.peerId,
      addresses: [
        { address: plain.udx, transport: 'udx', ok: true, rttMs: expect.any(Number) },
        { address: plain.tcp, transport: 'tcp', ok: true, rttMs: expect.any(Number) }
      ],
      turn: []
    }])
    const advice = report.modes.map((m: { why: string }) => m.why).join(' ')
    expect(advice).toContain('no gateway runs TURN')
    expect(advice).not.toMatch(/TURN covers|TURN relay|TURN over TCP/)

    const text = await runCli(['doctor', '--gateway', plain.udx, '--gateway', plain.tcp, '--stun-ports', stunPorts(plain)], { cwd: root })
    expect(text.code).toBe(0)
    expect(text.stdout).toMatch(/udx {2}answers, rtt \d+(\.\d{1,2})? ms/)
    expect(text.stdout).toMatch(/tcp {2}answers, rtt \d+(\.\d{1,2})? ms/)
    expect(text.stdout).toContain('turn none (this gateway runs no TURN)')
  })

  it('names the TURN servers a gateway hands out, and advises them', async () => {
    const result = await runCli(['doctor', '--gateway', withTurn.tcp, '--stun-ports', stunPorts(withTurn), '--json'], { cwd: root })
    expect(result.code).toBe(0)
    const report = JSON.parse(result.stdout)
    expect(report.gateways[0].turn).toEqual(expect.arrayContaining([expect.stringMatching(/^turn:127\.0\.0\.1:\d+/)]))
    expect(report.modes.find((m: { mode: string }) => m.mode === 'ice').why).toContain('TURN covers peers behind symmetric NATs')
  })

  it('a wrong gateway port: no answer, no mode works, exit 1 (STUN answering is not enough)', async () => {
    const closed = await freeUdpTcpPort()
    const wrong = `/ip4/127.0.0.1/tcp/${closed}/p2p/${plain.peerId}`
    const result = await runCli(['doctor', '--gateway', wrong, '--stun-ports', stunPorts(plain), '--dial-timeout-ms', '2000', '--json'], { cwd: root })
    expect(result.code).toBe(1)
    const report = JSON.parse(result.stdout)
    expect(report.natType).not.toBe('udp-blocked') // the STUN server answered
    expect(report.gateways[0].addresses[0]).toMatchObject({ address: wrong, ok: false, error: expect.any(String) })
    expect(report.modes.map((m: { verdict: string }) => m.verdict)).toEqual(['no', 'no', 'no'])
  })
})
