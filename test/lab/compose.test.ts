import { accessSync, constants, readFileSync } from 'node:fs'
import { execFileSync } from 'node:child_process'
import { describe, expect, it } from 'vitest'
import { parseDocument } from 'yaml'
import { gatewayIp, isNated, lanPeerIp, lanRouterIp, NAT_FLAVOURS, slotWanIp } from '../../src/lab/index.js'

interface Service {
  command?: string[]
  entrypoint?: string[]
  environment?: Record<string, string>
  networks?: Record<string, { ipv4_address: string }>
  network_mode?: string
  build?: { context: string, network?: string }
  image: string
  depends_on?: Record<string, { condition: string }>
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
    expect(Object.keys(compose.services).sort()).toEqual(['gateway', 'lab', 'peer1', 'peer2', 'router1', 'router2'])
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
      expect(svc(`peer${n}`).environment).toMatchObject({ ROUTER_IP: lanRouterIp(n), EVENTS_FILE: `/events/peer${n}.jsonl` })
    }
    // the lab judges from files: it needs no network at all
    expect(svc('lab').network_mode).toBe('none')
    expect(svc('lab').networks).toBeUndefined()
    expect(compose.networks.internet?.ipam.config[0]?.subnet).toBe('11.0.113.0/24')
    for (const [name, net] of Object.entries(compose.networks)) expect(net.internal, name).toBe(true)
  })

  it('peer1 dials peer2 once peer2 is reachable, and the lab judges once peer1 runs', () => {
    const healthy = { condition: 'service_healthy' }
    expect(svc('peer2').depends_on).toEqual({ router2: healthy, gateway: healthy })
    expect(svc('peer1').depends_on).toEqual({ router1: healthy, gateway: healthy, peer2: healthy })
    expect(svc('peer1').environment?.DIAL_EVENTS_FILE).toBe(svc('peer2').environment?.EVENTS_FILE)
    expect(svc('lab').depends_on).toEqual({ peer1: healthy })
    expect(svc('lab').command?.join(' ')).toBe('lab verdict --a ${NAT1_FLAVOUR:-cone} --b ${NAT2_FLAVOUR:-cone} ' +
      '--a-events /events/peer1.jsonl --b-events /events/peer2.jsonl')
  })

  it('gives each peer its router\'s settings, so changing one recreates the peer too', () => {
    for (const n of [1, 2]) {
      const router = svc(`router${n}`).environment ?? {}
      const peer = svc(`peer${n}`).environment ?? {}
      for (const knob of ['NAT_FLAVOUR', 'DELAY_MS', 'JITTER_MS', 'LOSS_PCT']) expect(peer[knob], knob).toBe(router[knob])
    }
  })

  it('builds each image once, from a staged context, with no network', () => {
    const built = Object.entries(compose.services).filter(([, s]) => s.build !== undefined)
    expect(built.map(([name, s]) => [name, s.image, s.build])).toEqual([
      ['gateway', 'natmesh-lab/natmesh', { context: 'docker/context/natmesh', network: 'none' }],
      ['router1', 'natmesh-lab/router', { context: 'docker/context/router', network: 'none' }],
      ['router2', 'natmesh-lab/router', { context: 'docker/context/router', network: 'none' }]
    ])
    // an image is never pulled: whoever uses the natmesh image starts after the gateway, which builds it
    for (const name of ['peer1', 'peer2']) expect(svc(name).depends_on).toHaveProperty('gateway')
  })

  it('routers default to a NAT flavour lab/nat-rules.sh knows', () => {
    for (const n of [1, 2]) {
      const flavour = /^\$\{NAT\d_FLAVOUR:-(.+)\}$/.exec(svc(`router${n}`).environment?.NAT_FLAVOUR ?? '')?.[1]
      expect(NAT_FLAVOURS.filter(isNated)).toContain(flavour)
    }
  })

  it('runs the gateway as specified', () => {
    expect(svc('gateway').entrypoint).toEqual(['/app/docker/gateway-entrypoint.sh'])
    expect(svc('gateway').command?.join(' ')).toBe(
      `--identity-file /data/gateway.key --announce ${gatewayIp(0)} --udp-port 4001 --tcp-port 4001 --api 0.0.0.0:8080 --json`)
  })

  it('references files that exist, with scripts executable and valid bash', () => {
    for (const f of ['docker/natmesh.Dockerfile', 'docker/router.Dockerfile']) accessSync(new URL(f, repo))
    const scripts = ['docker/router-entrypoint.sh', 'docker/router-health.sh', 'docker/peer-entrypoint.sh', 'docker/gateway-entrypoint.sh', 'docker/make-base-image.sh', 'lab/nat-rules.sh', 'lab/cleanup.sh']
    for (const script of scripts) {
      const path = new URL(script, repo)
      accessSync(path, constants.X_OK)
      execFileSync('bash', ['-n', path.pathname])
    }
  })
})
