import { createServer } from 'node:http'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { afterEach, describe, expect, it } from 'vitest'
import type { Server } from 'node:http'
import type { BrowserContext } from 'playwright-core'
import { LoopbackMesh } from '../helpers/loopback-mesh.js'

const TOKEN = 'cors-test-token-0123456789'
const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync']

/**
 * A web app's origin: an empty page on a port of its own (another port is another origin). With `gatewayApi` it
 * also proxies /ice-servers to the gateway the way the README's same-origin proxy example does.
 */
async function appOrigin (servers: Server[], gatewayApi?: string): Promise<string> {
  const server = createServer((req, res) => {
    if (req.url === '/ice-servers' && gatewayApi != null) {
      void (async () => {
        const upstream = await fetch(`${gatewayApi}/api/v1/ice/servers`, { headers: { authorization: `Bearer ${TOKEN}` } })
        res.writeHead(upstream.status, { 'content-type': 'application/json', 'cache-control': 'no-store' })
        res.end(await upstream.text())
      })()
      return
    }
    res.setHeader('content-type', 'text/html')
    res.end('<!doctype html><title>app</title>')
  })
  servers.push(server)
  await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
  const address = server.address()
  if (address == null || typeof address === 'string') throw new Error('no port')
  return `http://127.0.0.1:${address.port}`
}

const preflight = async (url: string, origin: string): Promise<Response> => fetch(url, {
  method: 'OPTIONS',
  headers: { origin, 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' }
})

describe('ICE servers API from other origins', () => {
  let mesh: LoopbackMesh | undefined
  let browser: BrowserContext | undefined
  let profile: string | undefined
  const servers: Server[] = []
  afterEach(async () => {
    await browser?.close()
    if (profile != null) await rm(profile, { recursive: true, force: true })
    for (const server of servers.splice(0)) await new Promise(resolve => { server.close(resolve) })
    await mesh?.stop()
  })

  it('has no CORS unless origins are configured: the preflight finds nothing', async () => {
    mesh = new LoopbackMesh()
    const gateway = await mesh.startGateway({ iceApiToken: TOKEN })
    const response = await preflight(`${gateway.apiUrl!}/api/v1/ice/servers`, 'https://app.example.com')
    expect(response.status).toBe(404)
    expect(response.headers.get('access-control-allow-origin')).toBeNull()
  })

  it('answers preflights and requests of allowed origins only, over real HTTP', async () => {
    mesh = new LoopbackMesh()
    const gateway = await mesh.startGateway({ iceApiToken: TOKEN, iceCorsOrigin: 'https://app.example.com,https://other.example.com' })
    const url = `${gateway.apiUrl!}/api/v1/ice/servers`

    const allowed = await preflight(url, 'https://app.example.com')
    expect(allowed.status).toBe(204)
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example.com')
    expect(allowed.headers.get('access-control-allow-methods')).toBe('GET')
    expect(allowed.headers.get('access-control-allow-headers')).toBe('Authorization')
    expect(allowed.headers.get('vary')).toContain('Origin')

    const refused = await preflight(url, 'https://evil.example.com')
    expect(refused.headers.get('access-control-allow-origin')).toBeNull()

    const get = await fetch(url, { headers: { origin: 'https://other.example.com', authorization: `Bearer ${TOKEN}` } })
    expect(get.status).toBe(200)
    expect(get.headers.get('access-control-allow-origin')).toBe('https://other.example.com')
    expect((await get.json() as { iceServers: unknown[] }).iceServers.length).toBeGreaterThan(0)
    // a refused token is readable by the allowed page too, so it can tell the user
    const unauthorized = await fetch(url, { headers: { origin: 'https://app.example.com', authorization: 'Bearer wrong-token-000000000' } })
    expect(unauthorized.status).toBe(401)
    expect(unauthorized.headers.get('access-control-allow-origin')).toBe('https://app.example.com')
    const foreign = await fetch(url, { headers: { origin: 'https://evil.example.com', authorization: `Bearer ${TOKEN}` } })
    expect(foreign.headers.get('access-control-allow-origin')).toBeNull()

    // the allowlist is for this route: other paths get no preflight answer
    const elsewhere = await preflight(`${gateway.apiUrl!}/api/v1/peers`, 'https://app.example.com')
    expect(elsewhere.status).toBe(404)
    expect(elsewhere.headers.get('access-control-allow-origin')).toBeNull()
  })

  it('lets a page of an allowed origin fetch ICE servers in a real browser, and not another', async () => {
    mesh = new LoopbackMesh()
    const [allowedOrigin, otherOrigin] = [await appOrigin(servers), await appOrigin(servers)]
    const gateway = await mesh.startGateway({ iceApiToken: TOKEN, iceCorsOrigin: allowedOrigin })
    const url = `${gateway.apiUrl!}/api/v1/ice/servers`

    profile = await mkdtemp(join(tmpdir(), 'natmesh-chromium-'))
    browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
    const page = browser.pages()[0] ?? await browser.newPage()
    const fetchFromPage = async (): Promise<string> => page.evaluate(async ({ url, token }) => {
      try {
        const response = await fetch(url, { headers: { authorization: `Bearer ${token}` } })
        const body = await response.json() as { iceServers: Array<{ urls: string[] }> }
        return `ok ${body.iceServers[0]!.urls[0]!}`
      } catch (err) {
        return `blocked ${(err as Error).name}`
      }
    }, { url, token: TOKEN })

    await page.goto(allowedOrigin)
    expect(await fetchFromPage()).toMatch(/^ok stun:/)
    await page.goto(otherOrigin)
    expect(await fetchFromPage()).toBe('blocked TypeError')
  })

  it('serves a page ICE servers through a same-origin proxy, no CORS and no token in the page', async () => {
    mesh = new LoopbackMesh()
    const gateway = await mesh.startGateway({ iceApiToken: TOKEN })
    const app = await appOrigin(servers, gateway.apiUrl!)
    profile = await mkdtemp(join(tmpdir(), 'natmesh-chromium-'))
    browser = await chromium.launchPersistentContext(profile, { executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS })
    const page = browser.pages()[0] ?? await browser.newPage()
    await page.goto(app)
    const first = await page.evaluate(async () => {
      const { iceServers } = await (await fetch('/ice-servers')).json() as { iceServers: Array<{ urls: string[] }> }
      return iceServers[0]!.urls[0]!
    })
    expect(first).toMatch(/^stun:/)
  })
})
