import type { SessionState } from './session-options.js'

/**
 * A session's lifecycle as one value. A live session is `opening` (made, no carrier yet), `attached` (frames
 * flow on a carrier) or `resuming` (its carrier was lost; it looks for another within the grace period); in
 * each, either direction may already be closed. It ends `closed` (both directions closed, everything
 * acknowledged) or `failed`. Carriers are generic so the machine can be driven without streams.
 */
export type Lifecycle<C> =
  | { readonly name: 'opening', readonly ends: Ends }
  | { readonly name: 'attached', readonly carrier: C, readonly ends: Ends }
  | { readonly name: 'resuming', readonly reason: string, readonly ends: Ends }
  | { readonly name: 'closed' }
  | { readonly name: 'failed', readonly error: Error }

/** which directions are finished: `local` once close() queued our CLOSE, `remote` once theirs arrived */
export interface Ends {
  readonly local: boolean
  readonly remote: boolean
}

export type LifecycleEvent<C> =
  | { readonly type: 'attach', readonly carrier: C }
  | { readonly type: 'carrier-lost', readonly carrier: C, readonly reason: string }
  | { readonly type: 'local-close' }
  | { readonly type: 'remote-close' }
  /** every message both ways is acknowledged; ends the session only once both directions are closed */
  | { readonly type: 'drained' }
  | { readonly type: 'fail', readonly error: Error }

export type LiveLifecycle<C> = Extract<Lifecycle<C>, { ends: Ends }>

export const opening: Lifecycle<never> = { name: 'opening', ends: { local: false, remote: false } }

export function isLive<C> (state: Lifecycle<C>): state is LiveLifecycle<C> {
  return state.name !== 'closed' && state.name !== 'failed'
}

/**
 * Every transition of a session, in one place. An event that does not apply to the state (an attach after
 * the end, the loss of a carrier already replaced) returns the state unchanged; the caller compares.
 */
export function transition<C> (state: Lifecycle<C>, event: LifecycleEvent<C>): Lifecycle<C> {
  if (!isLive(state)) return state
  switch (event.type) {
    case 'attach':
      return { name: 'attached', carrier: event.carrier, ends: state.ends }
    case 'carrier-lost':
      return state.name === 'attached' && state.carrier === event.carrier ? { name: 'resuming', reason: event.reason, ends: state.ends } : state
    case 'local-close':
      return state.ends.local ? state : { ...state, ends: { ...state.ends, local: true } }
    case 'remote-close':
      return state.ends.remote ? state : { ...state, ends: { ...state.ends, remote: true } }
    case 'drained':
      return state.ends.local && state.ends.remote ? { name: 'closed' } : state
    case 'fail':
      return { name: 'failed', error: event.error }
  }
}

/** the state reported by `Session.state` and in stats: a session still being set up counts as open */
export function publicState (state: Lifecycle<unknown>): SessionState {
  switch (state.name) {
    case 'opening':
    case 'attached': return 'open'
    default: return state.name
  }
}
