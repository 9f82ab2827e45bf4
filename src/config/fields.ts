import { isIP } from 'node:net'
import { peerIdFromString } from '@libp2p/peer-id'
import { z } from 'zod'
import { LOG_LEVELS } from '../core/logging.js'

/** Building blocks shared by the gateway and peer schemas. */

export const ipAddress = z.string().refine(value => isIP(value) !== 0, 'expected an IPv4 or IPv6 address')

/** 0 asks the OS for an ephemeral port */
export const port = z.number().int().min(0).max(65535)

export const integer = (min: number): z.ZodNumber => z.number().int().min(min)

export const peerIdString = z.string().superRefine((value, ctx) => {
  try {
    peerIdFromString(value)
  } catch {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a valid peer id` })
  }
})

export const identityFile = z.string().min(1)

/** a web origin as browsers send it in `Origin`: scheme, host and port, nothing else (https://app.example.com) */
export const webOrigin = z.string().refine(value => {
  try {
    const url = new URL(value)
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value
  } catch {
    return false
  }
}, 'expected an origin like https://app.example.com (scheme, host and optional port; no path, no trailing slash)')

export const logLevel = z.enum(LOG_LEVELS).default('info')

/**
 * Turns zod's issues into messages written for someone editing a config file: "expected a number >= 100"
 * rather than "Too small: expected number to be >=100". Messages set on a schema itself take precedence.
 */
export const friendlyMessages: z.core.$ZodErrorMap = issue => {
  switch (issue.code) {
    case 'invalid_type':
      return issue.input === undefined ? 'is required' : `expected ${describeType(issue.expected)}, got ${describeInput(issue.input)}`
    case 'too_small':
      return issue.origin === 'array'
        ? `expected at least ${issue.minimum} entr${issue.minimum === 1 ? 'y' : 'ies'}`
        : issue.origin === 'string'
          ? 'must not be empty'
          : `expected a number ${issue.inclusive === true ? '>=' : '>'} ${issue.minimum}`
    case 'too_big':
      return `expected a number ${issue.inclusive === true ? '<=' : '<'} ${issue.maximum}`
    case 'invalid_value':
      return `expected one of ${issue.values.map(value => JSON.stringify(value)).join(', ')}, got ${describeInput(issue.input)}`
    default:
      return undefined
  }
}

function describeType (expected: string): string {
  switch (expected) {
    case 'int': return 'an integer'
    case 'array': return 'a list'
    case 'object': return 'a mapping'
    case 'boolean': return 'true or false'
    default: return `a ${expected}`
  }
}

function describeInput (input: unknown): string {
  if (input === null) {
    return 'null'
  }

  if (Array.isArray(input)) {
    return 'a list'
  }

  if (typeof input === 'object') {
    return 'a mapping'
  }

  return JSON.stringify(input) ?? String(input)
}
