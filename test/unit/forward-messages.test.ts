import { describe, expect, it } from 'vitest'
import { parseReply } from '../../src/relay/forward/messages.js'

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
