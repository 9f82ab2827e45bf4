import { describe, expect, it } from 'vitest'
import { isLive, opening, publicState, transition } from '../../../src/upgrade/session-state.js'
import type { Lifecycle, LifecycleEvent } from '../../../src/upgrade/session-state.js'

/** the session state machine with strings for carriers */
type State = Lifecycle<string>
const run = (events: Array<LifecycleEvent<string>>, from: State = opening): State => events.reduce(transition, from)

describe('session lifecycle (src/upgrade/session-state.ts)', () => {
  it('opening -> attached -> resuming -> attached again, keeping which directions are closed', () => {
    const attached = run([{ type: 'attach', carrier: 'relay' }])
    expect(attached).toEqual({ name: 'attached', carrier: 'relay', ends: { local: false, remote: false } })
    const lost = run([{ type: 'local-close' }, { type: 'carrier-lost', carrier: 'relay', reason: 'reset' }], attached)
    expect(lost).toEqual({ name: 'resuming', reason: 'reset', ends: { local: true, remote: false } })
    expect(run([{ type: 'attach', carrier: 'direct' }], lost)).toEqual({ name: 'attached', carrier: 'direct', ends: { local: true, remote: false } })
    expect([opening, attached, lost].map(publicState)).toEqual(['open', 'open', 'resuming'])
  })

  it('the loss of a carrier already replaced changes nothing', () => {
    const onDirect = run([{ type: 'attach', carrier: 'relay' }, { type: 'attach', carrier: 'direct' }])
    expect(transition(onDirect, { type: 'carrier-lost', carrier: 'relay', reason: 'closed after the move' })).toBe(onDirect)
  })

  it('ends closed only once both directions are closed and everything is acknowledged', () => {
    const attached = run([{ type: 'attach', carrier: 'c' }])
    expect(transition(attached, { type: 'drained' })).toBe(attached)
    const halfClosed = run([{ type: 'local-close' }], attached)
    expect(transition(halfClosed, { type: 'drained' })).toBe(halfClosed)
    expect(run([{ type: 'remote-close' }, { type: 'drained' }], halfClosed)).toEqual({ name: 'closed' })
  })

  it('closing a direction twice is no transition', () => {
    const closed = run([{ type: 'remote-close' }])
    expect(transition(closed, { type: 'remote-close' })).toBe(closed)
  })

  it('fails from any live state, and nothing leaves closed or failed', () => {
    const error = new Error('boom')
    for (const live of [opening, run([{ type: 'attach', carrier: 'c' }]), run([{ type: 'attach', carrier: 'c' }, { type: 'carrier-lost', carrier: 'c', reason: 'x' }])] as State[]) {
      expect(transition(live, { type: 'fail', error })).toEqual({ name: 'failed', error })
    }
    const ended: State[] = [{ name: 'closed' }, { name: 'failed', error }]
    for (const state of ended) {
      expect(isLive(state)).toBe(false)
      for (const event of [{ type: 'attach', carrier: 'c' }, { type: 'fail', error: new Error('again') }, { type: 'local-close' }] as Array<LifecycleEvent<string>>) {
        expect(transition(state, event)).toBe(state)
      }
    }
  })
})
