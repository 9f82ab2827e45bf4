import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { afterAll, expect, it } from 'vitest'
import { addNs, delNs, listNs } from '../../src/lab/netns.js'

/** Runs the CLI as a user starts it (needs root and a built dist/; `npm test` builds it). */
const BIN = new URL('../../bin/natmesh.js', import.meta.url).pathname
const PREFIX = `nm-down${process.pid % 100000}-`
const OURS = [`${PREFIX}pub`, `${PREFIX}gw0`, `${PREFIX}peerA`, `${PREFIX}natA`]
/** another run's lab, whose prefix starts with ours */
const THEIRS = [`${PREFIX}2-pub`, `${PREFIX}2-peerA`]

const natmesh = async (args: string[]): Promise<{ code: number, stdout: string, stderr: string }> =>
  promisify(execFile)(process.execPath, [BIN, ...args], { timeout: 30_000 })
    .then(({ stdout, stderr }) => ({ code: 0, stdout, stderr }), (err: { code: number, stdout: string, stderr: string }) => err)

afterAll(async () => {
  const left = (await listNs()).filter(name => name.startsWith(PREFIX))
  await Promise.allSettled(left.map(delNs))
})

it('lab down removes its own lab\'s namespaces only, and wants the prefix', async () => {
  for (const ns of [...OURS, ...THEIRS]) await addNs(ns)

  const bare = await natmesh(['lab', 'down'])
  expect(bare.code).not.toBe(0)
  expect(bare.stderr).toContain('--prefix')
  expect((await listNs()).filter(name => name.startsWith(PREFIX)).sort()).toEqual([...OURS, ...THEIRS].sort())

  const down = await natmesh(['lab', 'down', '--prefix', PREFIX])
  expect(down.code).toBe(0)
  expect(down.stdout.trim()).toBe(`removed 4 namespace(s): ${[...OURS].sort().join(' ')}`)
  expect((await listNs()).filter(name => name.startsWith(PREFIX)).sort()).toEqual([...THEIRS].sort())
})
