import { NatmeshError } from '../core/errors.js'

/** One problem with one setting. `source` tells the user where to fix it: a file:line, an env variable or a flag. */
export interface ConfigIssue {
  /** dotted path from the role, e.g. `peer.natTraversal.holePunchTimeoutMs`; absent for whole-file problems */
  path?: string
  message: string
  source?: string
}

/** Thrown for any invalid configuration (code INVALID_CONFIG); the message lists every issue, one per line, so a user can fix them all at once. */
export class ConfigError extends NatmeshError<'INVALID_CONFIG'> {
  override name = 'ConfigError'
  readonly issues: readonly ConfigIssue[]

  constructor (title: string, issues: readonly ConfigIssue[]) {
    super('INVALID_CONFIG', [title, ...issues.map(issue => `  ${formatIssue(issue)}`)].join('\n'))
    this.issues = issues
  }
}

function formatIssue ({ path, message, source }: ConfigIssue): string {
  if (path == null) {
    return source == null ? message : `${source}: ${message}`
  }

  return source == null ? `${path}: ${message}` : `${path}: ${message} (from ${source})`
}
