import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'
// the package's own name: what `exports` in package.json lets a user import (dist/, built by `npm test` first)
import { createGateway, createLogger, createPeer, loadGatewayConfig, loadOrCreateIdentity, loadPeerConfig } from 'natmesh'
import type { Gateway, NatmeshPeer, PeerEvent } from 'natmesh'

const REPO = fileURLToPath(new URL('../../', import.meta.url))

describe('the public API (`import … from "natmesh"`)', () => {
  const running: Array<Gateway | NatmeshPeer> = []
  let dir = ''
  afterAll(async () => {
    for (const node of running.reverse()) await node.stop()
    if (dir !== '') await rm(dir, { recursive: true, force: true })
  })

  it('runs the README library example: a gateway, two peers, a relayed connection that goes direct and a session', async () => {
    dir = await mkdtemp(join(tmpdir(), 'natmesh-api-'))
    const gatewayConfig = await loadGatewayConfig({ env: {}, flags: { host: '127.0.0.1', udpPort: 0, tcpPort: 0, api: '127.0.0.1:0', stunPort: 0, stunOtherPort: 0, identityFile: join(dir, 'gw.key') } })
    const gateway = await createGateway(gatewayConfig, { privateKey: (await loadOrCreateIdentity(gatewayConfig.identityFile)).privateKey, logger: createLogger({ level: 'silent' }) })
    await gateway.start()
    running.push(gateway)

    const startPeer = async (name: string): Promise<{ peer: NatmeshPeer, reserved: Promise<void> }> => {
      const config = await loadPeerConfig({ env: {}, flags: { gateways: gateway.node.getMultiaddrs().map(String), host: '127.0.0.1', allowPrivateAddresses: true, identityFile: join(dir, `${name}.key`) } })
      const { privateKey } = await loadOrCreateIdentity(config.identityFile)
      const peer = await createPeer(config, { privateKey })
      const reserved = new Promise<void>(resolve => {
        peer.addEventListener('event', (evt: CustomEvent<PeerEvent>) => { if (evt.detail.event === 'reservation') resolve() })
      })
      await peer.start()
      running.push(peer)
      return { peer, reserved }
    }
    const a = await startPeer('a')
    const b = await startPeer('b')
    await Promise.all([a.reserved, b.reserved])

    b.peer.handleSessions('/test/api/1.0.0', async (session) => {
      for await (const message of session) await session.send(message)
    })
    const relayed = await a.peer.connect(b.peer.peerId.toString())
    expect(relayed.limits).toBeDefined()
    const direct = await a.peer.waitForDirect(relayed.remotePeer, 10_000)
    expect(direct?.limits).toBeUndefined()

    const session = await a.peer.openSession(b.peer.peerId.toString(), '/test/api/1.0.0')
    await session.send(new TextEncoder().encode('hello'))
    const echoed = await session[Symbol.asyncIterator]().next()
    expect(new TextDecoder().decode(echoed.value as Uint8Array)).toBe('hello')
    await session.close()
  }, 60_000)

  it('keeps internals private: Node refuses a deep import of dist/', () => {
    const deep = spawnSync(process.execPath, ['--input-type=module', '-e', "await import('natmesh/dist/peer/peer.js')"], { cwd: REPO, encoding: 'utf8' })
    expect(deep.status).not.toBe(0)
    expect(deep.stderr).toContain('ERR_PACKAGE_PATH_NOT_EXPORTED')
  })
})
