// importing @libp2p/logger registers libp2p's %p %a %b %t %m %c %k %e formatters in weald's shared table
import '@libp2p/logger'
import { format } from 'node:util'
import debug from 'weald'
import type { Logger } from './logging.js'
import type { ComponentLogger, Logger as Libp2pLog } from '@libp2p/interface'
import type { Level } from 'pino'

/**
 * libp2p's logger interface over pino, so that `--log-level` governs libp2p's components and natmesh's own
 * `natmesh:*` ones the same as the rest: `log()` is pino's debug, `log.trace()` its trace. Each record carries
 * the component's name (`component: 'libp2p:tcp'`).
 *
 * `log.error()` is pino's debug too (with `libp2pLevel: 'error'`): libp2p calls it for what a mesh lives with
 * (a dial to a stale address, a stream reset by a peer that left, a DHT query to a gone server); natmesh
 * reports the failures that matter to its user itself, at warn or error, with what to do about them. Shown as
 * errors, libp2p's would drown those at the default level.
 */
export function libp2pLogger (logger: Logger): ComponentLogger {
  return {
    forComponent: (name) => componentLog(logger, name)
  }
}

/**
 * libp2p names a logger for every connection, muxer and stream it makes; a pino child holds its serialised
 * bindings, so it is made on the first record only (at the default level, never): a gateway holds thousands of
 * connections. Levels are the parent's, which children of natmesh's loggers never change.
 */
function componentLog (parent: Logger, name: string): Libp2pLog {
  let child: Logger | undefined
  const logger = (): Logger => (child ??= parent.child({ component: name }))
  return Object.assign(levelLog(parent, logger, 'debug'), {
    error: levelLog(parent, logger, 'debug', { libp2pLevel: 'error' }),
    trace: levelLog(parent, logger, 'trace'),
    newScope: (scope: string) => componentLog(parent, `${name}:${scope}`)
  })
}

function levelLog (parent: Logger, logger: () => Logger, level: Level, fields?: Record<string, string>): ((...args: unknown[]) => void) & { enabled: boolean } {
  const log = (...args: unknown[]): void => {
    // libp2p formats arguments eagerly at some call sites only; the level check keeps the rest free
    if (!parent.isLevelEnabled(level)) return
    if (fields == null) logger()[level](formatLibp2p(args))
    else logger()[level](fields, formatLibp2p(args))
  }
  return withEnabled(log, parent, level)
}

/** `enabled` is read at each use: libp2p checks it before building an expensive message */
function withEnabled<T extends object> (target: T, logger: Logger, level: Level): T & { enabled: boolean } {
  return Object.defineProperty(target, 'enabled', { get: () => logger.isLevelEnabled(level), enumerable: true }) as T & { enabled: boolean }
}

/** what weald's formatters see as `this` (%o and %O read it); never colours: the output is a log record */
const FORMATTER_THIS = { inspectOpts: {}, useColors: false }

/**
 * One message from a libp2p-style call: libp2p's and weald's own formatters (`%p`, `%a`, `%e`, `%o`...) as weald
 * applies them, then Node's `util.format` for the printf ones (`%s`, `%d`, `%j`, `%%`) and any arguments left over.
 */
export function formatLibp2p (args: unknown[]): string {
  const [first, ...rest] = args
  if (typeof first !== 'string') return formatLibp2p(['%O', ...args])
  const remaining: unknown[] = []
  let next = 0
  const message = first.replace(/%([a-zA-Z%])/g, (match, letter: string) => {
    if (letter === '%') return match
    const formatter = debug.formatters[letter]
    if (formatter == null) {
      if (next < rest.length) remaining.push(rest[next])
      next++
      return match
    }
    // escaped: what a formatter wrote (an error's stack, say) is text, not more placeholders
    return formatter.call(FORMATTER_THIS, rest[next++]).replaceAll('%', '%%')
  })
  const values = [...remaining, ...rest.slice(next)]
  // util.format leaves a lone format string untouched, `%%` included
  return values.length === 0 ? message.replaceAll('%%', '%') : format(message, ...values)
}
