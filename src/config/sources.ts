import { readFile } from 'node:fs/promises'
import { z } from 'zod'
import { ConfigError } from './errors.js'
import { friendlyMessages } from './fields.js'
import type { ConfigIssue } from './errors.js'
import type { Document, LineCounter } from 'yaml'

/**
 * How a raw env/flag value becomes a config value. Env values are always strings and commander's mostly are,
 * so they are converted strictly here ("12abc" is an error, not 12); the schema then checks ranges.
 */
export type SettingKind = 'string' | 'integer' | 'boolean' | 'list' | 'hostPort'

export interface Setting {
  /** where the value goes in the config object */
  path: readonly string[]
  kind: SettingKind
}

/** One entry per flag: the flag's key also names its env variable (`holePunchTimeoutMs` → `NATMESH_HOLE_PUNCH_TIMEOUT_MS`) */
export type Settings<Flags> = { readonly [Key in keyof Flags]-?: Setting }

export const ENV_PREFIX = 'NATMESH_'
export const CONFIG_FILE_ENV = `${ENV_PREFIX}CONFIG`

export function envName (flag: string): string {
  return ENV_PREFIX + flag.replace(/[A-Z]/g, letter => `_${letter}`).toUpperCase()
}

export function flagName (flag: string): string {
  return '--' + flag.replace(/[A-Z]/g, letter => `-${letter.toLowerCase()}`)
}

export interface LoadConfigInit<Flags, Schema extends z.ZodType> {
  /** prefixes every issue path, e.g. `peer.natTraversal.holePunchTimeoutMs` */
  role: 'gateway' | 'peer'
  schema: Schema
  settings: Settings<Flags>
  /** YAML file; falls back to $NATMESH_CONFIG, and to defaults only when neither is set */
  file?: string
  env: Record<string, string | undefined>
  flags: Partial<Flags>
}

/** Merges flags > environment > YAML file > schema defaults, then validates the result in one pass */
export async function loadConfig<Flags, Schema extends z.ZodType> (init: LoadConfigInit<Flags, Schema>): Promise<z.output<Schema>> {
  const title = `invalid ${init.role} configuration:`
  const file = init.file ?? nonEmpty(init.env[CONFIG_FILE_ENV])
  const yaml = file == null ? undefined : await readYamlFile(file, title)

  const merged: Record<string, unknown> = yaml?.values ?? {}
  const sources = new Map<string, string>()
  const issues: ConfigIssue[] = []
  const apply = (setting: Setting, raw: unknown, source: string): void => {
    if (raw === undefined) {
      return
    }

    const result = convert(setting.kind, raw)

    if ('error' in result) {
      issues.push({ path: `${init.role}.${setting.path.join('.')}`, message: result.error, source })
    } else {
      overlay(merged, setting.path, result.value, source, sources)
    }
  }

  const settings = Object.entries(init.settings) as Array<[string, Setting]>
  for (const [flag, setting] of settings) {
    apply(setting, nonEmpty(init.env[envName(flag)]), envName(flag))
  }
  for (const [flag, setting] of settings) {
    apply(setting, (init.flags as Record<string, unknown>)[flag], flagName(flag))
  }

  const parsed = init.schema.safeParse(merged, { error: friendlyMessages })

  if (!parsed.success) {
    for (const issue of parsed.error.issues) {
      for (const { path, message } of splitUnknownKeys(issue)) {
        issues.push({
          path: [init.role, ...path].join('.'),
          message,
          source: sourceOf(path, sources, yaml)
        })
      }
    }
  }

  if (issues.length > 0 || !parsed.success) {
    throw new ConfigError(title, issues)
  }

  return parsed.data
}

interface YamlFile {
  name: string
  values: Record<string, unknown>
  document: Document
  lines: LineCounter
  /** the YAML library, loaded only when there is a config file to read */
  yaml: typeof import('yaml')
}

async function readYamlFile (name: string, title: string): Promise<YamlFile> {
  let text: string
  try {
    text = await readFile(name, 'utf8')
  } catch (err: any) {
    throw new ConfigError(title, [{ source: name, message: `cannot read config file (${err.code ?? err.message})` }])
  }

  const yaml = await import('yaml')
  const lines = new yaml.LineCounter()
  const document = yaml.parseDocument(text, { lineCounter: lines, prettyErrors: false })

  if (document.errors.length > 0) {
    throw new ConfigError(title, document.errors.map(err => ({
      source: `${name}:${lines.linePos(err.pos[0]).line}`,
      message: err.message
    })))
  }

  const values: unknown = document.toJS() ?? {}

  if (!isPlainObject(values)) {
    throw new ConfigError(title, [{ source: name, message: 'expected a mapping of settings at the top level' }])
  }

  return { name, values, document, lines, yaml }
}

type Conversion = { value: unknown } | { error: string }

/**
 * The one rule for list settings, from a flag (comma-separated, repeated, or both: commander hands a variadic
 * option over as an array) or from the environment: every item is split at commas, blanks are dropped.
 */
export function splitList (raw: string | readonly string[]): string[] {
  return (typeof raw === 'string' ? [raw] : raw).flatMap(item => item.split(',')).map(item => item.trim()).filter(item => item !== '')
}

function convert (kind: SettingKind, raw: unknown): Conversion {
  if (kind === 'list' && Array.isArray(raw) && raw.every(item => typeof item === 'string')) {
    return { value: splitList(raw) }
  }

  if (typeof raw !== 'string') {
    // commander already produced a typed value (a number parser, a boolean switch, a variadic list): the schema checks it
    return { value: raw }
  }

  switch (kind) {
    case 'string':
      return { value: raw }
    case 'integer':
      return /^-?\d+$/.test(raw.trim()) ? { value: Number(raw) } : { error: `expected an integer, got ${JSON.stringify(raw)}` }
    case 'boolean':
      return raw === 'true' || raw === 'false' ? { value: raw === 'true' } : { error: `expected true or false, got ${JSON.stringify(raw)}` }
    case 'list':
      return { value: splitList(raw) }
    case 'hostPort':
      return parseHostPort(raw)
  }
}

/** `127.0.0.1:8080` or `[::1]:8080` */
function parseHostPort (raw: string): Conversion {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d+)$/.exec(raw.trim())

  if (match == null) {
    return { error: `expected "host:port" (IPv6 as "[::1]:port"), got ${JSON.stringify(raw)}` }
  }

  return { value: { host: match[1] ?? match[2], port: Number(match[3]) } }
}

/** Writes a value into the merged config, recording which source set each leaf so errors can name it */
function overlay (target: Record<string, unknown>, path: readonly string[], value: unknown, source: string, sources: Map<string, string>): void {
  if (isPlainObject(value)) {
    for (const [key, child] of Object.entries(value)) {
      overlay(target, [...path, key], child, source, sources)
    }
    return
  }

  let node = target
  for (const key of path.slice(0, -1)) {
    const next = node[key]
    node = isPlainObject(next) ? next : (node[key] = {}) as Record<string, unknown>
  }
  node[path[path.length - 1] as string] = value
  sources.set(path.join('.'), source)
}

/** zod reports all unknown keys of an object in one issue; report each at its own path so each gets its own line number */
function splitUnknownKeys (issue: z.core.$ZodIssue): Array<{ path: PropertyKey[], message: string }> {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map(key => ({ path: [...issue.path, key], message: 'unknown setting' }))
  }

  return [{ path: issue.path, message: issue.message }]
}

/** The layer that supplied the value at `path` (or at the closest enclosing path); undefined means a default or nothing */
function sourceOf (path: PropertyKey[], sources: Map<string, string>, yaml: YamlFile | undefined): string | undefined {
  for (let length = path.length; length > 0; length--) {
    const source = sources.get(path.slice(0, length).join('.'))

    if (source != null) {
      return source
    }
  }

  const line = yaml == null ? undefined : lineOf(yaml, path)

  return line == null ? undefined : `${yaml?.name}:${line}`
}

/** The line in the YAML file where the key (or list item) at `path` is written */
function lineOf ({ document, lines, yaml: { isMap, isScalar, isSeq } }: YamlFile, path: PropertyKey[]): number | undefined {
  let node: unknown = document.contents
  let offset: number | undefined

  for (const key of path) {
    if (isMap(node)) {
      const pair = node.items.find(item => isScalar(item.key) && String(item.key.value) === String(key))
      offset = (isScalar(pair?.key) ? pair.key.range?.[0] : undefined) ?? offset
      node = pair?.value
    } else if (isSeq(node)) {
      node = node.items[Number(key)]
      offset = (node as { range?: [number] } | undefined)?.range?.[0] ?? offset
    } else {
      break
    }
  }

  return offset == null ? undefined : lines.linePos(offset).line
}

function isPlainObject (value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value != null && !Array.isArray(value)
}

/** an empty variable (`NATMESH_MODE=` in a compose file) counts as unset */
function nonEmpty (value: string | undefined): string | undefined {
  return value === '' ? undefined : value
}
