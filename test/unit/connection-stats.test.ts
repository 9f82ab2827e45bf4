import { describe, expect, it } from 'vitest'
import { ConnectionStats } from '../../src/peer/connection-stats.js'

const RELAY_ADDR = '/ip4/127.0.0.1/udp/4001/udx/p2p/GW/p2p-circuit/p2p/B'
const DIRECT_ADDR = '/ip4/127.0.0.1/udp/5555/udx'
const DIRECT_ADDR_2 = '/ip4/127.0.0.1/udp/6666/udx'

describe('ConnectionStats', () => {
  it('knows nothing of a peer before anything happened', () => {
    const stats = new ConnectionStats()
    expect(stats.get('B')).toBeUndefined()
    expect(stats.list()).toEqual([])
    // a close for an unknown peer creates no entry
    stats.closed('B', 'c1')
    expect(stats.get('B')).toBeUndefined()
  })

  it('reports the relay path while only the relayed connection is open', () => {
    const stats = new ConnectionStats()
    stats.opened('B', 'relay-1', 'relay', RELAY_ADDR)
    expect(stats.get('B')).toEqual({ peer: 'B', path: 'relay', remoteAddr: RELAY_ADDR, bytesSent: 0, bytesReceived: 0, holePunchAttempts: 0 })
  })

  it('prefers the direct path whichever order the connections opened in', () => {
    const relayFirst = new ConnectionStats()
    relayFirst.opened('B', 'relay-1', 'relay', RELAY_ADDR)
    relayFirst.opened('B', 'direct-1', 'direct', DIRECT_ADDR)
    expect(relayFirst.get('B')).toMatchObject({ path: 'direct', remoteAddr: DIRECT_ADDR })

    const directFirst = new ConnectionStats()
    directFirst.opened('B', 'direct-1', 'direct', DIRECT_ADDR)
    directFirst.opened('B', 'relay-1', 'relay', RELAY_ADDR)
    expect(directFirst.get('B')).toMatchObject({ path: 'direct', remoteAddr: DIRECT_ADDR })
  })

  it('reports the ICE candidate pair of the WebRTC connection that is the best path, and drops it with that connection', () => {
    const webrtc = '/p2p/GW/p2p-circuit/webrtc/p2p/B'
    const stats = new ConnectionStats()
    stats.opened('B', 'relay-1', 'relay', RELAY_ADDR)
    stats.candidatePair('B', 'relay-1-unknown', 'srflx') // not an open connection: ignored
    expect(stats.get('B')?.candidateType).toBeUndefined()
    stats.opened('B', 'webrtc-1', 'direct', webrtc)
    stats.candidatePair('B', 'webrtc-1', 'relay')
    expect(stats.get('B')).toMatchObject({ path: 'direct', remoteAddr: webrtc, candidateType: 'relay' })
    stats.closed('B', 'webrtc-1')
    expect(stats.get('B')).toMatchObject({ path: 'relay', remoteAddr: RELAY_ADDR, candidateType: undefined })
  })

  it('falls back to the relay when the direct connection closes, and to none when all close', () => {
    const stats = new ConnectionStats()
    stats.opened('B', 'relay-1', 'relay', RELAY_ADDR)
    stats.opened('B', 'direct-1', 'direct', DIRECT_ADDR)
    stats.closed('B', 'direct-1')
    expect(stats.get('B')).toMatchObject({ path: 'relay', remoteAddr: RELAY_ADDR })
    // a second close of the same connection changes nothing
    stats.closed('B', 'direct-1')
    expect(stats.get('B')).toMatchObject({ path: 'relay', remoteAddr: RELAY_ADDR })
    stats.closed('B', 'relay-1')
    const none = stats.get('B')
    expect(none?.path).toBe('none')
    expect(none?.remoteAddr).toBeUndefined()
    // the peer stays listed (its counters are history), with no open path
    expect(stats.list().map(s => s.peer)).toEqual(['B'])
  })

  it('keeps a direct path while any direct connection is open, and moves to the remaining one', () => {
    const stats = new ConnectionStats()
    stats.opened('B', 'relay-1', 'relay', RELAY_ADDR)
    stats.opened('B', 'direct-1', 'direct', DIRECT_ADDR)
    stats.opened('B', 'direct-2', 'direct', DIRECT_ADDR_2)
    stats.closed('B', 'direct-1')
    expect(stats.get('B')).toMatchObject({ path: 'direct', remoteAddr: DIRECT_ADDR_2 })
    stats.closed('B', 'direct-2')
    expect(stats.get('B')).toMatchObject({ path: 'relay', remoteAddr: RELAY_ADDR })
  })

  it('ignores closes of connections it never saw', () => {
    const stats = new ConnectionStats()
    stats.opened('B', 'relay-1', 'relay', RELAY_ADDR)
    stats.closed('B', 'nope')
    expect(stats.get('B')).toMatchObject({ path: 'relay', remoteAddr: RELAY_ADDR })
  })

  it('keeps peers apart', () => {
    const stats = new ConnectionStats()
    stats.opened('B', 'b-direct', 'direct', DIRECT_ADDR)
    stats.opened('C', 'c-relay', 'relay', RELAY_ADDR)
    stats.bytes('B', 10, 20)
    stats.closed('C', 'b-direct')
    expect(stats.get('B')).toMatchObject({ path: 'direct', bytesSent: 10, bytesReceived: 20 })
    expect(stats.get('C')).toMatchObject({ path: 'relay', bytesSent: 0, bytesReceived: 0 })
    expect(stats.list().map(s => s.peer).sort()).toEqual(['B', 'C'])
  })

  it('adds up bytes in both directions, across connections coming and going', () => {
    const stats = new ConnectionStats()
    stats.bytes('B', 100, 0)
    stats.opened('B', 'relay-1', 'relay', RELAY_ADDR)
    stats.bytes('B', 0, 250)
    stats.closed('B', 'relay-1')
    stats.bytes('B', 1, 2)
    expect(stats.get('B')).toMatchObject({ bytesSent: 101, bytesReceived: 252, path: 'none' })
  })

  it('adds up hole-punch attempts and keeps the last time-to-direct', () => {
    const stats = new ConnectionStats()
    stats.holePunch('B', 3)
    expect(stats.get('B')?.holePunchAttempts).toBe(3)
    expect(stats.get('B')?.directAfterMs).toBeUndefined()
    stats.holePunch('B', 1, 420)
    expect(stats.get('B')).toMatchObject({ holePunchAttempts: 4, directAfterMs: 420 })
    // a later failed attempt does not erase when the direct path came
    stats.holePunch('B', 2)
    expect(stats.get('B')).toMatchObject({ holePunchAttempts: 6, directAfterMs: 420 })
    // a success with 0 ms is a value, not "no value"
    stats.holePunch('B', 1, 0)
    expect(stats.get('B')).toMatchObject({ holePunchAttempts: 7, directAfterMs: 0 })
  })

  it('records the last RTT', () => {
    const stats = new ConnectionStats()
    stats.rtt('B', 12.5)
    stats.rtt('B', 3)
    expect(stats.get('B')?.rttMs).toBe(3)
  })

  it('hands out snapshots: changing one does not change the stats, and no internals leak', () => {
    const stats = new ConnectionStats()
    stats.opened('B', 'relay-1', 'relay', RELAY_ADDR)
    stats.bytes('B', 5, 5)
    const snapshot = stats.get('B')!
    snapshot.bytesSent = 999
    snapshot.path = 'direct'
    expect(stats.get('B')).toMatchObject({ bytesSent: 5, path: 'relay' })
    expect(Object.keys(snapshot)).not.toContain('open')
    expect(Object.keys(stats.list()[0]!)).not.toContain('open')
  })

  it('counts open connections by path and finished hole punches by outcome and strategy, across peers', () => {
    const stats = new ConnectionStats()
    stats.opened('B', 'relay-1', 'relay', RELAY_ADDR)
    stats.opened('B', 'direct-1', 'direct', DIRECT_ADDR)
    stats.opened('C', 'direct-2', 'direct', DIRECT_ADDR_2)
    expect(stats.openByPath()).toEqual({ relay: 1, direct: 2 })
    stats.closed('B', 'direct-1')
    expect(stats.openByPath()).toEqual({ relay: 1, direct: 1 })

    stats.holePunch('B', 1, 120, { outcome: 'success', strategy: 'dcutr' })
    stats.holePunch('C', 3, undefined, { outcome: 'failure', strategy: 'birthday' })
    // no strategy: a plain DCUtR punch
    stats.holePunch('C', 1, 80, { outcome: 'success' })
    expect(stats.holePunchCounts()).toEqual(expect.arrayContaining([
      { outcome: 'success', strategy: 'dcutr', count: 2 },
      { outcome: 'failure', strategy: 'birthday', count: 1 }
    ]))
    expect(stats.holePunchCounts()).toHaveLength(2)
  })
})
