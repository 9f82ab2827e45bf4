import { randomBytes } from 'node:crypto'
import { link, mkdir, open, rm, writeFile } from 'node:fs/promises'
import { dirname } from 'node:path'
import { NatmeshError } from './errors.js'
import type { NatmeshErrorCode } from './errors.js'

/** A file holding a secret (a private key, a shared secret): readable by its owner only, created atomically */
export interface PrivateFile {
  path: string
  /** names the file in error messages, e.g. "identity file" */
  label: string
  /** the code of the NatmeshError thrown for a file that cannot be used */
  code: NatmeshErrorCode
}

/** the file's bytes, or undefined when there is no file yet */
export async function readPrivateFile ({ path, label, code }: PrivateFile): Promise<Uint8Array | undefined> {
  const title = label.charAt(0).toUpperCase() + label.slice(1)
  let file
  try {
    file = await open(path, 'r')
  } catch (err: any) {
    if (err.code === 'ENOENT') {
      return undefined
    }
    throw new NatmeshError(code, `Cannot open ${label} ${path}: ${err.message}`, { cause: err })
  }

  try {
    // check the opened file, not the path, so the file cannot be swapped between the check and the read
    const stats = await file.stat()

    if (!stats.isFile()) {
      throw new NatmeshError(code, `${title} ${path} is not a regular file`)
    }

    const mode = stats.mode & 0o777
    if ((mode & 0o077) !== 0) {
      throw new NatmeshError(code,
        `Permissions 0${mode.toString(8)} for ${label} ${path} are too open: ` +
        `a secret must be readable by its owner only. Fix it with: chmod 600 '${path}'`
      )
    }

    return await file.readFile()
  } finally {
    await file.close()
  }
}

/**
 * Writes the bytes to a temporary file (0600) and hard-links it into place: unlike rename, link fails when `path`
 * already exists, so of two processes creating the same file exactly one wins, and nobody ever reads a
 * half-written secret. Returns false if another process won.
 */
export async function publishPrivateFile ({ path, label, code }: PrivateFile, bytes: Uint8Array): Promise<boolean> {
  const temporary = `${path}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`

  try {
    await mkdir(dirname(path), { recursive: true, mode: 0o700 })
    await writeFile(temporary, bytes, { flag: 'wx', mode: 0o600, flush: true })
    await link(temporary, path)
    return true
  } catch (err: any) {
    if (err.code === 'EEXIST') {
      return false
    }
    throw new NatmeshError(code, `Cannot create ${label} ${path}: ${err.message}`, { cause: err })
  } finally {
    // the secret now lives at `path` (or was not needed); a leftover temporary copy is only clutter
    await rm(temporary, { force: true })
  }
}

export interface LoadOrCreate<T> {
  /** reads what the file holds; @throws a NatmeshError with the file's code when it is not valid */
  parse: (bytes: Uint8Array) => T
  /** a new value, and its bytes for the file */
  create: () => Promise<{ value: T, bytes: Uint8Array }>
}

/**
 * The value a private file holds, or a new one written there on first start (`created`). When another process
 * creates the file between our read and our write, its value wins, so both agree.
 */
export async function loadOrCreatePrivateFile<T> (file: PrivateFile, how: LoadOrCreate<T>): Promise<{ value: T, created: boolean }> {
  const existing = await readPrivateFile(file)
  if (existing != null) return { value: how.parse(existing), created: false }
  const fresh = await how.create()
  if (await publishPrivateFile(file, fresh.bytes)) return { value: fresh.value, created: true }
  const winner = await readPrivateFile(file)
  if (winner == null) throw new NatmeshError(file.code, `${capitalized(file.label)} ${file.path} disappeared while it was being created`)
  return { value: how.parse(winner), created: false }
}

function capitalized (text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1)
}
