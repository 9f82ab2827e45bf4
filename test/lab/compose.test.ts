import { accessSync, constants, readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { parseDocument } from 'yaml'
import { gatewayIp, isNated, lanPeerIp, lanRouterIp, NAT_FLAVOURS, slotWanIp } from '../../src/lab/index.js'

interface Service {
  command?: string[]
  entrypoint?: string[]
  environment?: Record<string, string>
  networks: Record<string, { ipv4_address: string }>
  build: { dockerfile: string }
  depends_on?: Record<string, unknown>
}
interface Compose {
  services: Record<string, Service>
  networks: Record<string, { internal?: boolean, ipam: { config: Array<{ subnet: string }> } }>
}

const repo = new URL('../../', import.meta.url)
const doc = parseDocument(readFileSync(new URL('docker-compose.nat-test.yml', repo), 'utf8'), { merge: true })
const compose = doc.toJS() as Compose
const svc = (name: string): Service => compose.services[name]!

describe('docker-compose.nat-test.yml', () => {
  it('parses', () => {
    expect(doc.errors).toEqual([])
    expect(Object.keys(compose.services).sort()).toEqual(['gateway', 'peer1', 'peer2', 'router1', 'router2'])
  })

  it('follows the namespace lab address plan, on internal networks only', () => {
    expect(svc('gateway').networks).toEqual({ internet: { ipv4_address: gatewayIp(0) } })
    for (const n of [1, 2]) {
      const router = svc(`router${n}`)
      expect(router.networks).toEqual({
        internet: { ipv4_address: slotWanIp(n) },
        [`lan${n}`]: { ipv4_address: lanRouterIp(n) }
      })
      expect(router.environment).toMatchObject({ WAN_IP: slotWanIp(n), LAN_IP: lanRouterIp(n) })
      expect(svc(`peer${n}`).networks).toEqual({ [`lan${n}`]: { ipv4_address: lanPeerIp(n) } })
      expect(svc(`peer${n}`).environment).toEqual({ ROUTER_IP: lanRouterIp(n) })
      expect(Object.keys(svc(`peer${n}`).depends_on ?? {}).sort()).toEqual(['gateway', `router${n}`])
    }
    expect(compose.networks.internet?.ipam.config[0]?.subnet).toBe('11.0.113.0/24')
    for (const [name, net] of Object.entries(compose.networks)) expect(net.internal, name).toBe(true)
  })

  it('routers default to a NAT flavour lab/nat-rules.sh knows', () => {
    for (const n of [1, 2]) {
      const flavour = /^\$\{NAT\d_FLAVOUR:-(.+)\}$/.exec(svc(`router${n}`).environment?.NAT_FLAVOUR ?? '')?.[1]
      expect(NAT_FLAVOURS.filter(isNated)).toContain(flavour)
    }
  })

  it('runs the gateway as specified', () => {
    expect(svc('gateway').command?.join(' ')).toBe(
      `gateway --identity-file /data/gateway.key --announce ${gatewayIp(0)} --udp-port 4001 --tcp-port 4001 --api 0.0.0.0:8080 --json`)
  })

  it('references files that exist, with scripts executable and valid bash', () => {
    for (const s of Object.values(compose.services)) accessSync(new URL(s.build.dockerfile, repo))
    const scripts = ['docker/router-entrypoint.sh', 'docker/peer-entrypoint.sh', 'lab/nat-rules.sh', 'lab/cleanup.sh']
    for (const script of scripts) {
      const path = new URL(script, repo)
      accessSync(path, constants.X_OK)
      execFileSync('bash', ['-n', path.pathname])
    }
  })
})
