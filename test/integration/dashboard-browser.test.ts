import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { afterEach, describe, expect, it } from 'vitest'
import type { BrowserContext } from 'playwright-core'
import { TurnAllocation } from '../../src/turn/client/allocate.js'
import { freeUdpTcpPort } from '../helpers/free-port.js'
import { LoopbackMesh } from '../helpers/loopback-mesh.js'
import { waitFor } from '../helpers/wait-for.js'

/**
 * The dashboard in a real headless Chromium (Debian's `chromium` package) against a live gateway with real peers.
 * The screenshot is kept in a temp dir whose path the test prints.
 */
const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

describe('gateway dashboard', () => {
  let mesh: LoopbackMesh | undefined
  let browser: BrowserContext | undefined
  let profile: string | undefined
  let dir: string | undefined
  afterEach(async () => {
    await browser?.close()
    await mesh?.stop()
    for (const path of [profile, dir]) if (path != null) await rm(path, { recursive: true, force: true })
  })

  it('is off unless configured', async () => {
    mesh = new LoopbackMesh()
    const gateway = await mesh.startGateway()
    for (const path of ['/dashboard', '/api/v1/dashboard']) {
      const response = await fetch(`${gateway.apiUrl!}${path}`)
      expect(response.status).toBe(404)
    }
  })

  it('shows peers, their reservations, the relayed circuit, the path and the punch report, in a real browser', async () => {
    mesh = new LoopbackMesh()
    const gateway = await mesh.startGateway({ dashboard: true })
    const stunPorts = gateway.stun!.addresses().map(e => String(e.port))
    const a = await mesh.startPeer({ stunPorts })
    const b = await mesh.startPeer({ stunPorts })
    const [idA, idB] = [a.peerId.toString(), b.peerId.toString()]
    const relayed = await a.connect(idB)
    expect(relayed.remoteAddr.toString()).toContain('/p2p-circuit')
    expect(await a.waitForDirect(b.peerId, 10_000)).toBeDefined()
    // the report travels to the gateway on its own stream: wait until the gateway has it
    const snapshot = await waitFor(async () => {
      const s = await gateway.dashboard()
      return s.totals.punches.success >= 1 && s.totals.circuits === 1 ? s : undefined
    }, 5000, 'the punch report and the relayed circuit on the gateway')
    expect(snapshot.paths).toEqual([expect.objectContaining({ path: 'direct', circuits: 1 })])

    profile = await mkdtemp(join(tmpdir(), 'natmesh-chromium-'))
    browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS, viewport: { width: 1400, height: 1000 } })
    const page = browser.pages()[0] ?? await browser.newPage()
    const requested: string[] = []
    page.on('request', request => { requested.push(request.url()) })
    const errors: string[] = []
    page.on('pageerror', err => { errors.push(err.message) })
    page.on('console', msg => { if (msg.type() === 'error') errors.push(msg.text()) })

    const api = gateway.apiUrl!
    await page.goto(`${api}/dashboard`)
    await page.waitForSelector(`#peers tr[data-peer="${idB}"]`)

    expect(await page.textContent('#gateway-id')).toBe(gateway.node.peerId.toString())
    expect(await page.textContent('#total-peers')).toBe('2 / 2')
    expect(await page.textContent('#total-reservations')).toBe('2')
    expect(await page.textContent('#total-circuits')).toBe('1')
    expect(await page.textContent('#punch-success')).toMatch(/^[1-9]\d* ok$/)
    expect(await page.textContent('#punch-failure')).toBe('0 failed')
    expect(await page.textContent('#total-relayed')).toMatch(/^\d+(\.\d)? (B|KiB|MiB)$/)
    expect(await page.textContent('#total-relayed')).not.toBe('0 B')
    expect(await page.textContent('#total-turn')).toBe('off')

    for (const [peer, other] of [[a, b], [b, a]] as const) {
      const row = page.locator(`#peers tr[data-peer="${peer.peerId.toString()}"]`)
      const cells = await row.locator('td').allInnerTexts()
      expect(cells[0]).toBe(peer.peerId.toString())
      expect(cells[1]).toBe('connected')
      const port = gateway.addressBook.get(peer.peerId.toString())!.addresses.find(x => x.transport === 'udx')!.port
      expect(cells[2]).toContain(`127.0.0.1:${port}`)
      expect(cells[5]).toMatch(/^expires in \d+ h \d+ min$/)
      // a dialled b: a opened the circuit, b received it
      expect(cells[6]).toBe(peer === a ? '1 / 0' : '0 / 1')
      expect(cells[7]).toBe('0')
      expect(other).toBeDefined()
    }
    // whoever reported said what it knows of its NAT (on loopback: no NAT, an open mapping)
    const reporter = snapshot.punches.recent[0]!.peer
    const reporterCells = await page.locator(`#peers tr[data-peer="${reporter}"] td`).allInnerTexts()
    expect(reporterCells[3]).toBe('no-nat')
    expect(reporterCells[4]).toBe('open')

    const pathCells = await page.locator('#paths tbody tr').first().locator('td').allInnerTexts()
    expect(await page.locator('#paths tbody tr').count()).toBe(1)
    expect(await page.locator('#paths tbody tr code').evaluateAll(codes => codes.map(c => c.getAttribute('title')).sort())).toEqual([idA, idB].sort())
    expect(pathCells[2]).toBe('direct')
    expect(pathCells[3]).toBe('1')
    expect(pathCells[5]).toMatch(/^success dcutr · 1 attempt\(s\)/)

    const report = await page.locator('#reports tbody tr').first().locator('td').allInnerTexts()
    expect(report[3]).toBe('success')
    expect(report[4]).toBe('dcutr')
    expect(report[7]).toBe('udx')
    expect(await page.locator('#timeline .minute').count()).toBe(60)
    expect(await page.locator('#timeline .minute .success').count()).toBeGreaterThanOrEqual(1)

    const shot = join(profile, '..', `natmesh-dashboard-${process.pid}.png`)
    await page.screenshot({ path: shot, fullPage: true })
    expect((await stat(shot)).size).toBeGreaterThan(10_000)
    console.log(`dashboard screenshot: ${shot}`)

    // nothing but the gateway's own origin was asked for, and the page ran without errors
    expect(requested.length).toBeGreaterThanOrEqual(4)
    expect(requested.filter(url => !url.startsWith(`${api}/`))).toEqual([])
    expect(errors).toEqual([])

    // a circuit that ends leaves the list; the pair keeps its reported direct path
    await relayed.close()
    const after = await waitFor(async () => {
      const s = await gateway.dashboard()
      return s.totals.circuits === 0 ? s : undefined
    }, 5000, 'the closed circuit to leave the dashboard')
    expect(after.paths).toEqual([expect.objectContaining({ path: 'direct', circuits: 0 })])
    expect(after.peers.map(p => [p.circuitsOut, p.circuitsIn])).toEqual([[0, 0], [0, 0]])
  })

  it('counts a peer\'s allocations on the gateway\'s TURN server (real coturn)', async () => {
    dir = await mkdtemp(join(tmpdir(), 'natmesh-dashboard-turn-'))
    const file = join(dir, 'gateway.yaml')
    const turnPort = await freeUdpTcpPort()
    await writeFile(file, `turn: { enabled: true, required: true, port: ${turnPort}, stateDir: ${join(dir, 'turn')}, secretFile: ${join(dir, 'turn-secret')}, expirySweepMs: 200 }\n`)
    mesh = new LoopbackMesh()
    const gateway = await mesh.startGateway({ dashboard: true }, file)
    const peer = await mesh.startPeer({ mode: 'relay-only' })
    expect((await gateway.dashboard()).totals.turnAllocations).toBe(0)

    const credential = gateway.turn!.credentialFor(peer.peerId.toString())
    const allocation = await TurnAllocation.open({ host: '127.0.0.1', port: turnPort, ...credential }, { rtoMs: 200, retransmissions: 3 })
    try {
      const snapshot = await waitFor(async () => {
        const s = await gateway.dashboard()
        return s.totals.turnAllocations === 1 ? s : undefined
      }, 10_000, 'the TURN allocation in the dashboard')
      expect(snapshot.gateway.turn).toBe('up')
      expect(snapshot.peers.find(p => p.peerId === peer.peerId.toString())?.turnAllocations).toBe(1)
      const json = await (await fetch(`${gateway.apiUrl!}/api/v1/dashboard`)).json() as { totals: { turnAllocations: number } }
      expect(json.totals.turnAllocations).toBe(1)
    } finally {
      allocation.close()
    }
  })
})
