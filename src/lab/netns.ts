import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'
import { readFile } from 'node:fs/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { run, type RunOptions, type RunResult } from './run.js'

/** Every lab namespace name starts with this, so leftovers can always be found and removed. */
export const REQUIRED_PREFIX = 'nm-'

export function assertPrefix (prefix: string): void {
  if (!prefix.startsWith(REQUIRED_PREFIX) || !/^[A-Za-z0-9_-]{3,24}$/.test(prefix)) {
    throw new Error(`namespace prefix "${prefix}" must start with "${REQUIRED_PREFIX}" and use at most 24 of [A-Za-z0-9_-]`)
  }
}

/** `ip -n <ns> ...args` */
export async function ipIn (ns: string, args: string[]): Promise<RunResult> {
  return await run('ip', ['-n', ns, ...args])
}

/** Runs argv inside the namespace. */
export async function execIn (ns: string, argv: string[], opts?: RunOptions): Promise<RunResult> {
  const [cmd, ...args] = argv
  if (cmd === undefined) throw new Error('execIn: empty argv')
  return await run('ip', ['netns', 'exec', ns, cmd, ...args], opts)
}

/** Starts a process inside the namespace; `ip netns exec` execs it, so the child's pid is the process itself. */
export function spawnIn (ns: string, cmd: string, args: string[] = [], opts: SpawnOptions = {}): ChildProcess {
  return spawn('ip', ['netns', 'exec', ns, cmd, ...args], opts)
}

async function sysctl (ns: string, settings: string[]): Promise<void> {
  await execIn(ns, ['sysctl', '-q', ...settings.flatMap((s) => ['-w', s])])
}

/** Creates a namespace with loopback up and IPv6 off (the lab's addresses are IPv4 only). */
export async function addNs (ns: string, extraSysctls: string[] = []): Promise<void> {
  await run('ip', ['netns', 'add', ns])
  // set before any interface exists: new interfaces inherit "default"
  await sysctl(ns, ['net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1', ...extraSysctls])
  await ipIn(ns, ['link', 'set', 'lo', 'up'])
}

/** Creates a veth pair with each end directly in its namespace (nothing ever appears in the host namespace). */
export async function addVeth (nsA: string, ifA: string, nsB: string, ifB: string): Promise<void> {
  await run('ip', ['link', 'add', ifA, 'netns', nsA, 'type', 'veth', 'peer', 'name', ifB, 'netns', nsB])
}

export async function listNs (): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'list'])
  // lines look like "nm-pub (id: 3)" or just "nm-pub"
  return stdout.split('\n').map((l) => l.split(' ')[0] ?? '').filter((n) => n !== '')
}

/**
 * How long a killed process may take to be gone: one that holds a TUN device or a packet socket (the WAN
 * emulator) can sit in the kernel's teardown, uninterruptible, for a while after SIGKILL
 */
const KILLED_EXIT_MS = 5000

/** Kills whatever still runs inside the namespace (it would keep the namespace alive), waits for it to be gone, then deletes the namespace. */
export async function delNs (ns: string): Promise<void> {
  const pids = await run('ip', ['netns', 'pids', ns]).then((r) => r.stdout.split('\n').filter((p) => p !== '').map(Number), () => [])
  for (const pid of pids) {
    try { process.kill(pid, 'SIGKILL') } catch { /* already gone */ }
  }
  const deadline = Date.now() + KILLED_EXIT_MS
  await Promise.all(pids.map(async (pid) => { while (!(await isGone(pid)) && Date.now() < deadline) await sleep(20) }))
  await run('ip', ['netns', 'del', ns])
}

/** no such process, or dead and only waiting for its parent to reap it */
async function isGone (pid: number): Promise<boolean> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => undefined)
  if (stat === undefined) return true
  // "pid (comm) S ...": the state follows the last ")", as comm may hold one
  const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
  return state === 'Z' || state === 'X'
}

/** Removes every namespace whose name starts with prefix, e.g. leftovers of a crashed run. Returns their names. */
export async function cleanupStale (prefix: string): Promise<string[]> {
  assertPrefix(prefix)
  const stale = (await listNs()).filter((n) => n.startsWith(prefix))
  await Promise.allSettled(stale.map(delNs))
  return stale
}

/**
 * The names a lab with this prefix gives its namespaces: <prefix>pub, <prefix>gw<i>, <prefix>peer<slot>,
 * <prefix>nat<slot>, and for the flavours <prefix>cgn<slot> (carrier NAT) and <prefix>wan<slot> (WAN emulator).
 */
export function isLabNamespace (prefix: string, name: string): boolean {
  return name.startsWith(prefix) && /^(pub|gw\d{1,3}|(peer|nat|cgn|wan)[A-Za-z0-9]{1,8})$/.test(name.slice(prefix.length))
}

/**
 * Removes the namespaces of the lab that used exactly this prefix (`lab up`, a `--keep` run or a crashed one), and
 * nothing else: another run whose prefix merely starts the same way (nm-lab-2- under nm-lab-) keeps its own.
 */
export async function removeLab (prefix: string): Promise<string[]> {
  assertPrefix(prefix)
  const ours = (await listNs()).filter((name) => isLabNamespace(prefix, name))
  await Promise.allSettled(ours.map(delNs))
  return ours
}
