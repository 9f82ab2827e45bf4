import { pino } from 'pino'
import type { DestinationStream, Logger } from 'pino'

export type { Logger }

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const
export type LogLevel = typeof LOG_LEVELS[number]

export interface LoggerInit {
  /** default 'info' */
  level?: LogLevel
  /** JSON lines when true, one human-readable line per record when false (default) */
  json?: boolean
}

const STDERR = 2

/**
 * Logs always go to stderr: stdout carries the daemon's JSON event stream, which must stay parseable.
 * Components log through `logger.child({ component: 'name' })`.
 */
export function createLogger (init: LoggerInit = {}): Logger {
  const options = { level: init.level ?? 'info', base: undefined }

  if (init.json === true) {
    return pino(options, pino.destination({ dest: STDERR, sync: true }))
  }

  return pino(options, humanReadable(pino.destination({ dest: STDERR, sync: true })))
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL'
}

/** pino hands each record to the destination as a JSON line; reformat it as `time LEVEL component: msg key=value` */
function humanReadable (out: DestinationStream): DestinationStream {
  return {
    write (line: string): void {
      out.write(formatRecord(JSON.parse(line)) + '\n')
    }
  }
}

function formatRecord (record: Record<string, unknown>): string {
  const { level, time, msg, component, ...fields } = record
  const head = [
    new Date(Number(time)).toISOString().slice(11, 23),
    (LEVEL_NAMES[Number(level)] ?? String(level)).padEnd(5),
    typeof component === 'string' ? `${component}:` : undefined,
    typeof msg === 'string' ? msg : undefined
  ]
  const tail = Object.entries(fields).map(([key, value]) => `${key}=${formatValue(value)}`)

  return [...head, ...tail].filter(part => part != null && part !== '').join(' ')
}

function formatValue (value: unknown): string {
  if (isSerializedError(value)) {
    return JSON.stringify(`${value.type}: ${value.message}`)
  }

  if (typeof value === 'string') {
    return /^[^\s"=]+$/.test(value) ? value : JSON.stringify(value)
  }

  return JSON.stringify(value)
}

/** the shape pino's standard `err` serializer produces */
function isSerializedError (value: unknown): value is { type: string, message: string } {
  return typeof value === 'object' && value != null && 'type' in value && 'message' in value && 'stack' in value
}
