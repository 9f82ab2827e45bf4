import type { ChildProcess } from 'node:child_process'
import { fileURLToPath } from 'node:url'

/**
 * A WAN link's impairments, applied by lab/wan-link.py (a userspace delay line: this lab's kernel has no netem) to
 * every frame crossing the link, in each direction independently.
 */
export interface WanLinkOptions {
  /** one-way delay in ms (each direction); default 0 */
  delayMs?: number
  /** uniform jitter in ms, ± around the delay; a direction is never reordered. Default 0 */
  jitterMs?: number
  /** per-direction drop probability of IPv4 frames, in percent (0-100); default 0 */
  lossPercent?: number
  /** seeds the jitter and loss draws, for a reproducible run; default random */
  seed?: number
}

export interface WanLink {
  delayMs: number
  jitterMs: number
  lossPercent: number
  seed?: number
}

export const MAX_WAN_DELAY_MS = 60_000

/** lab/wan-link.py; src/lab and dist/lab both sit two levels down */
export const WAN_LINK_SCRIPT = fileURLToPath(new URL('../../lab/wan-link.py', import.meta.url))

/** The WAN emulator's interfaces inside its own namespace: towards the slot, and towards the internet segment. */
export const WAN_LINK_INNER_IF = 'in0'
export const WAN_LINK_OUTER_IF = 'out0'

const READY_TIMEOUT_MS = 10_000

export function parseWanLink (opts: WanLinkOptions, what = 'WAN link'): WanLink {
  const check = (name: keyof WanLinkOptions, max: number): number => {
    const v = opts[name] ?? 0
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > max) throw new Error(`${what}: ${name} must be a number 0..${max}, got ${String(v)}`)
    return v
  }
  const link: WanLink = { delayMs: check('delayMs', MAX_WAN_DELAY_MS), jitterMs: check('jitterMs', MAX_WAN_DELAY_MS), lossPercent: check('lossPercent', 100) }
  if (opts.seed !== undefined) {
    if (!Number.isInteger(opts.seed) || opts.seed < 0) throw new Error(`${what}: seed must be a non-negative integer, got ${String(opts.seed)}`)
    link.seed = opts.seed
  }
  return link
}

/** `python3 lab/wan-link.py ...` arguments for this link */
export function wanLinkArgs (link: WanLink): string[] {
  return [WAN_LINK_SCRIPT, WAN_LINK_INNER_IF, WAN_LINK_OUTER_IF, String(link.delayMs), String(link.jitterMs), String(link.lossPercent),
    ...(link.seed !== undefined ? [String(link.seed)] : [])]
}

/**
 * Resolves once the forwarder printed "ready" (both sockets bound); rejects with its stderr if it exits first. Once
 * ready it no longer holds this process open (`natmesh lab up` exits and leaves the lab running); the topology's
 * down() still kills it.
 */
export async function waitForWanLink (child: ChildProcess): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    let stdout = ''
    let stderr = ''
    const timer = setTimeout(() => { finish(new Error(`the WAN emulator did not start within ${READY_TIMEOUT_MS} ms: ${stderr.trim()}`)) }, READY_TIMEOUT_MS)
    const onOut = (d: string): void => { stdout += d; if (stdout.includes('ready\n')) finish() }
    const onErr = (d: string): void => { stderr = (stderr + d).slice(-4000) }
    const onExit = (code: number | null): void => { finish(new Error(`the WAN emulator exited (${code ?? 'killed'}) before it was ready: ${stderr.trim()}`)) }
    const onError = (err: Error): void => { finish(new Error(`the WAN emulator could not start (python3 is needed): ${err.message}`)) }
    const finish = (err?: Error): void => {
      clearTimeout(timer)
      child.stdout?.off('data', onOut)
      child.off('exit', onExit)
      child.off('error', onError)
      if (err === undefined) {
        child.stdout?.destroy()
        child.stderr?.destroy()
        child.unref()
        resolve()
      } else {
        reject(err)
      }
    }
    child.stdout?.setEncoding('utf8').on('data', onOut)
    child.stderr?.setEncoding('utf8').on('data', onErr)
    child.once('exit', onExit)
    child.once('error', onError)
  })
}
