import { describe, expect, it } from 'vitest'
import { formatEndpoint, parseEndpoint, parseReply } from '../../src/relay/forward/messages.js'

describe('relay-forward replies: the noise-first agreement', () => {
  it('keeps a target\'s agreement to noise first', () => {
    expect(parseReply({ status: 'OK', streamId: 7, noiseFirst: true })).toEqual({ status: 'OK', streamId: 7, limit: undefined, noiseFirst: true })
  })

  it('reads a reply without it (an older gateway or target) as no agreement', () => {
    expect(parseReply({ status: 'OK', streamId: 7 })).toEqual({ status: 'OK', streamId: 7, limit: undefined })
  })

  it('takes only `true` as agreement', () => {
    for (const noiseFirst of [1, 'true', false, null, {}]) expect(parseReply({ status: 'OK', streamId: 7, noiseFirst })).not.toHaveProperty('noiseFirst')
  })
})

describe('relay-forward: the peers\' mappings passed on for an early punch', () => {
  it('keeps a target\'s `punch` and the gateway\'s `targetAt` in an OK reply', () => {
    expect(parseReply({ status: 'OK', streamId: 7, punch: true, targetAt: '203.0.113.9:40001' })).toEqual({ status: 'OK', streamId: 7, limit: undefined, punch: true, targetAt: '203.0.113.9:40001' })
  })

  it('drops a mapping that is no IPv4 "host:port" (a hint: the reply stands)', () => {
    for (const targetAt of ['203.0.113.9', '203.0.113.9:0', '203.0.113.9:65536', '999.0.113.9:4000', '[2001:db8::1]:4000', 'a.b.c.d:4000', 4000, null, {}]) {
      expect(parseReply({ status: 'OK', streamId: 7, targetAt })).toEqual({ status: 'OK', streamId: 7, limit: undefined })
      expect(parseEndpoint(targetAt)).toBeUndefined()
    }
  })

  it('writes and reads an endpoint alike', () => {
    const at = { host: '198.51.100.4', port: 61000, family: 4 as const }
    expect(parseEndpoint(formatEndpoint(at))).toEqual(at)
  })
})
