/**
 * The peer daemons of a trial, started ahead of it: with our CLI each loads its modules behind trial-gate.js and
 * waits on stdin until the trial lets it go; another build's CLI is started only when released.
 */
import { existsSync } from 'node:fs'
import { dirname, join } from 'node:path'
import type { LabProcess } from './trial-process.js'

export const STOP_GRACE_MS = 2000

/** dist/lab/trial-gate.js next to the CLI, and the modules it preloads; undefined when the CLI is not ours */
export function gateFor (cli: string): { module: string, preload: string[] } | undefined {
  const cliDir = dirname(cli)
  const module = join(cliDir, '..', 'lab', 'trial-gate.js')
  const preload = [join(cliDir, 'peer-command.js')]
  if (!existsSync(module) || !preload.every((p) => existsSync(p))) return undefined
  return { module, preload }
}

/** A peer daemon of a coming trial: started (loading its modules) or not, and held until released. */
export interface PeerLauncher {
  /** lets the daemon run, with `extra` CLI arguments appended */
  release: (extra: string[]) => LabProcess
  /** the process, once released */
  process: () => LabProcess | undefined
  cancel: () => Promise<void>
  /**
   * ends a decided trial's daemon at once: its graceful shutdown (about a second, while libp2p closes every
   * connection politely) measures nothing, and the next trial's fresh daemons are already loaded
   */
  discard: () => Promise<void>
}

export interface PeerPair { A: PeerLauncher, B: PeerLauncher }

export function gated (proc: LabProcess): PeerLauncher {
  let released = false
  return {
    release: (extra) => {
      released = true
      proc.child.stdin?.end(JSON.stringify(extra) + '\n')
      return proc
    },
    // a daemon that was never let go has nothing to report
    process: () => released ? proc : undefined,
    cancel: async () => { await proc.stop(STOP_GRACE_MS) },
    discard: async () => { await proc.stop(0) }
  }
}

export function ungated (start: (extra: string[]) => LabProcess): PeerLauncher {
  let proc: LabProcess | undefined
  return {
    release: (extra) => {
      proc = start(extra)
      proc.child.stdin?.end()
      return proc
    },
    process: () => proc,
    cancel: async () => { await proc?.stop(STOP_GRACE_MS) },
    discard: async () => { await proc?.stop(0) }
  }
}
