import { describe, expect, it } from 'vitest'
import { parsePort, parseReply } from '../../src/relay/forward/messages.js'

describe('forwarded circuit control messages', () => {
  it('takes an OK reply with a relay worker port, and one without (a 1.0.0 gateway)', () => {
    expect(parseReply({ status: 'OK', streamId: 7, port: 40001 })).toEqual({ status: 'OK', streamId: 7, limit: undefined, port: 40001 })
    expect(parseReply({ status: 'OK', streamId: 7 })).toEqual({ status: 'OK', streamId: 7, limit: undefined, port: undefined })
  })

  it('refuses a port that is no UDP port, whatever its type', () => {
    for (const port of [0, 65536, -1, 1.5, '4001', true, {}]) {
      expect(() => parseReply({ status: 'OK', streamId: 7, port })).toThrow('port is not a UDP port')
      expect(() => parsePort(port)).toThrow('port is not a UDP port')
    }
  })
})
