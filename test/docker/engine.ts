/**
 * A Docker engine of the test's own: dockerd with its data, state and socket under a temporary directory, so it
 * clashes with no other engine, and stopped by its PID. It touches no firewall (--iptables=false), makes no
 * default bridge and no NAT, and cannot reach a registry (its proxy is a closed loopback port): everything the lab
 * needs is built here, and a pull fails at once instead of leaving the machine.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { execFile } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

export interface RunResult { code: number, stdout: string, stderr: string }

/** Runs a command to its end (never through a shell) and resolves with its exit code and output, whatever the code. */
export async function runCommand (cmd: string, args: readonly string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<RunResult> {
  return await new Promise((resolve, reject) => {
    execFile(cmd, args, { env, timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err !== null && typeof err.code !== 'number') { reject(new Error(`${cmd} ${args.join(' ')}: ${err.message}\n${stderr}`)); return }
      resolve({ code: err === null ? 0 : err.code as number, stdout, stderr })
    })
  })
}

export class DockerEngine {
  private constructor (readonly dir: string, readonly host: string, private readonly daemon: ChildProcess, private readonly log: () => string) {}

  /** Starts dockerd and resolves once its API listens; rejects with its log if it exits or does not get there. */
  static async start (timeoutMs = 60_000): Promise<DockerEngine> {
    const dir = await mkdtemp(join(tmpdir(), 'natmesh-docker-'))
    const socket = join(dir, 'docker.sock')
    const closedPort = 'http://127.0.0.1:9'
    const daemon = spawn('dockerd', [
      '--data-root', join(dir, 'data'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'docker.pid'),
      '--host', `unix://${socket}`, '--iptables=false', '--ip-forward=false', '--ip-masq=false', '--bridge=none'
    ], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { PATH: process.env.PATH, HTTP_PROXY: closedPort, HTTPS_PROXY: closedPort, NO_PROXY: '' }
    })
    let log = ''
    daemon.stderr?.setEncoding('utf8').on('data', (chunk: string) => { log = (log + chunk).slice(-64 * 1024) })
    const engine = new DockerEngine(dir, `unix://${socket}`, daemon, () => log)
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => { reject(new Error(`dockerd: API not listening after ${timeoutMs} ms`)) }, timeoutMs)
        const done = (err?: Error): void => { clearTimeout(timer); if (err === undefined) resolve(); else reject(err) }
        daemon.once('error', (err) => { done(new Error(`dockerd could not start (${err.message}): apt-get install docker.io`)) })
        daemon.once('exit', (code, signal) => { done(new Error(`dockerd exited (${signal ?? `code ${code}`})`)) })
        daemon.stderr?.on('data', () => { if (log.includes('API listen on')) done() })
      })
    } catch (err) {
      await engine.stop()
      throw new Error(`${err instanceof Error ? err.message : String(err)}\n--- dockerd log (tail) ---\n${log.slice(-4000)}`)
    }
    return engine
  }

  /** The environment docker clients need to talk to this engine (and only it). */
  env (extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
    const env: NodeJS.ProcessEnv = {}
    for (const [key, value] of Object.entries(process.env)) {
      if (!key.startsWith('DOCKER_') && !key.startsWith('COMPOSE_') && !/^NAT\d_/.test(key)) env[key] = value
    }
    return { ...env, DOCKER_HOST: this.host, ...extra }
  }

  logTail (chars = 4000): string {
    return this.log().slice(-chars)
  }

  /** SIGTERM to our dockerd (it stops its containers and its containerd), then its directory goes. */
  async stop (graceMs = 30_000): Promise<void> {
    if (this.daemon.exitCode === null && this.daemon.signalCode === null && this.daemon.pid !== undefined) {
      const exited = new Promise<void>((resolve) => { this.daemon.once('exit', () => { resolve() }) })
      this.daemon.kill('SIGTERM')
      const timer = setTimeout(() => { this.daemon.kill('SIGKILL') }, graceMs)
      await exited
      clearTimeout(timer)
    }
    await rm(this.dir, { recursive: true, force: true })
  }
}
