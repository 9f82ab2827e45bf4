import { spawn } from 'node:child_process'

export interface RunOptions {
  /** written to the command's stdin, which is then closed */
  input?: string
  timeoutMs?: number
}

export interface RunResult {
  stdout: string
  stderr: string
}

/** A lab command that failed; the message names the command and carries its stderr. */
export class LabCommandError extends Error {
  constructor (readonly argv: string[], readonly code: number | null, readonly stderr: string) {
    super(`${argv.join(' ')} failed (${code === null ? 'killed' : `exit ${code}`}): ${stderr.trim()}`)
    this.name = 'LabCommandError'
  }
}

/**
 * Runs a program with an argument vector (never through a shell, so names and addresses cannot inject commands)
 * and resolves with its output once it exits 0.
 */
export async function run (cmd: string, args: string[], opts: RunOptions = {}): Promise<RunResult> {
  const argv = [cmd, ...args]
  return await new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: opts.timeoutMs ?? 10_000 })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
    child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
    child.on('error', (err) => { reject(new LabCommandError(argv, null, err.message)) })
    child.on('close', (code) => {
      if (code === 0) resolve({ stdout, stderr })
      else reject(new LabCommandError(argv, code, stderr))
    })
    // a command that exits without reading its input reports its own error; the broken pipe adds nothing
    child.stdin.on('error', () => {})
    child.stdin.end(opts.input)
  })
}
