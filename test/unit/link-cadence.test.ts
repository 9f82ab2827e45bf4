import type { Connection } from '@libp2p/interface'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { LinkCadence } from '../../src/peer/link-cadence.js'
import { PATH_CADENCE } from '../../src/transport/index.js'
import type { PathCadence, UdxPath } from '../../src/transport/index.js'

/** gateway connections as the cadence sees them: a udx path that records every cadence set on it, or none (TCP) */
function links (...overUdx: boolean[]): { connections: Connection[], set: PathCadence[][], pathOf: (c: Connection) => UdxPath | undefined } {
  const connections = overUdx.map((_, i) => ({ id: `c${i}` }) as unknown as Connection)
  const set: PathCadence[][] = overUdx.map(() => [])
  const pathOf = (connection: Connection): UdxPath | undefined => {
    const i = connections.indexOf(connection)
    return overUdx[i] === true ? { rttMs: 0, setCadence: (cadence) => { set[i]?.push(cadence) } } : undefined
  }
  return { connections, set, pathOf }
}

describe('LinkCadence (rules of src/peer/link-cadence.ts; fake timers)', () => {
  afterEach(() => { vi.useRealTimers() })

  it('rule 3: a link that opens while the peer has no peer path is set idle; TCP links are left alone', () => {
    const { connections, set, pathOf } = links(true, false)
    const cadence = new LinkCadence({ pathOf, gatewayConnections: () => connections })
    for (const connection of connections) cadence.linked(connection)
    expect(set).toEqual([[PATH_CADENCE.idle], []])
  })

  it('rules 1 and 2: the first peer path sets every udx link active at once; idle again only holdMs after the last closed', () => {
    vi.useFakeTimers()
    const { connections, set, pathOf } = links(true, true)
    const cadence = new LinkCadence({ pathOf, gatewayConnections: () => connections, holdMs: 30_000 })
    cadence.peerPaths(1)
    expect(set).toEqual([[PATH_CADENCE.active], [PATH_CADENCE.active]])
    cadence.peerPaths(2)
    cadence.peerPaths(1)
    cadence.peerPaths(0)
    vi.advanceTimersByTime(29_999)
    expect(cadence.cadence).toBe(PATH_CADENCE.active)
    expect(set[0]).toEqual([PATH_CADENCE.active])
    vi.advanceTimersByTime(1)
    expect(cadence.cadence).toBe(PATH_CADENCE.idle)
    expect(set).toEqual([[PATH_CADENCE.active, PATH_CADENCE.idle], [PATH_CADENCE.active, PATH_CADENCE.idle]])
  })

  it('rule 2: a peer path that opens during the hold keeps the links active, with no idle step between', () => {
    vi.useFakeTimers()
    const { connections, set, pathOf } = links(true)
    const cadence = new LinkCadence({ pathOf, gatewayConnections: () => connections, holdMs: 30_000 })
    cadence.peerPaths(1)
    cadence.peerPaths(0)
    vi.advanceTimersByTime(20_000)
    cadence.peerPaths(1)
    cadence.peerPaths(0)
    vi.advanceTimersByTime(29_000)
    expect(set).toEqual([[PATH_CADENCE.active]])
    vi.advanceTimersByTime(1000)
    expect(set).toEqual([[PATH_CADENCE.active, PATH_CADENCE.idle]])
  })

  it('stop() ends the hold: nothing is set after it', () => {
    vi.useFakeTimers()
    const { connections, set, pathOf } = links(true)
    const cadence = new LinkCadence({ pathOf, gatewayConnections: () => connections })
    cadence.peerPaths(1)
    cadence.peerPaths(0)
    cadence.stop()
    vi.runAllTimers()
    expect(set).toEqual([[PATH_CADENCE.active]])
  })
})
