import { Writable } from 'node:stream'
import { multiaddr } from '@multiformats/multiaddr'
import { pino } from 'pino'
import { describe, expect, it } from 'vitest'
import { libp2pLogger } from '../../src/core/libp2p-logger.js'
import type { LogLevel } from '../../src/core/logging.js'

/** a pino logger at `level` writing its JSON records into `records` */
function capture (level: LogLevel): { records: Array<Record<string, unknown>>, logger: pino.Logger } {
  const records: Array<Record<string, unknown>> = []
  const out = new Writable({
    write (chunk: Buffer, _encoding, done) { records.push(JSON.parse(chunk.toString())); done() }
  })
  return { records, logger: pino({ level, base: undefined }, out) }
}

/** formatting it throws: a logger that formats at a level that is off fails the test */
const UNFORMATTABLE = { toString (): string { throw new Error('formatted while disabled') } }

describe('libp2pLogger: libp2p\'s ComponentLogger over pino', () => {
  it('formats libp2p\'s %a %b %p %e and printf\'s %s %d %% into one message, with the component\'s name', async () => {
    const { records, logger } = capture('trace')
    const log = libp2pLogger(logger).forComponent('libp2p:test')
    log('dial %a as %p: %s of %d, 50%% done', multiaddr('/ip4/1.2.3.4/tcp/1'), { toString: () => '12D3KooWpeer' }, 'try', 2)
    log.newScope('sub')('%b', Uint8Array.from([0, 1, 2]), 'left over')
    log.trace({ a: 1 })
    log.error('failed: %e', new Error('boom %s'))
    await new Promise(resolve => setImmediate(resolve))

    expect(records).toMatchObject([
      { level: 20, component: 'libp2p:test', msg: 'dial /ip4/1.2.3.4/tcp/1 as 12D3KooWpeer: try of 2, 50% done' },
      { level: 20, component: 'libp2p:test:sub', msg: '15T left over' },
      { level: 10, component: 'libp2p:test', msg: '{ a: 1 }' },
      { level: 20, component: 'libp2p:test', libp2pLevel: 'error', msg: expect.stringMatching(/^failed: Error: boom %s\n\s+at /) }
    ])
  })

  it('follows the level: enabled says so, and nothing is formatted below it', async () => {
    const { records, logger } = capture('info')
    const log = libp2pLogger(logger).forComponent('libp2p:quiet')
    expect(log.enabled).toBe(false)
    log('%p', UNFORMATTABLE)
    log.trace('%s', UNFORMATTABLE)
    log.error('%a', UNFORMATTABLE)
    logger.level = 'debug'
    expect(log.enabled).toBe(true)
    await new Promise(resolve => setImmediate(resolve))
    expect(records).toEqual([])
  })
})
