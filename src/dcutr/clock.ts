/**
 * The time a punch sees: `now` for the outcome's cost and the birthday budget's minute. Tests pass their own to
 * script time without sleeping.
 */
export interface Clock {
  now: () => number
}

export const systemClock: Clock = {
  now: () => Date.now()
}
