import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import { expect, it } from 'vitest'

/**
 * stopWithin in a process of its own (it ends the process), with a TCP server left open as the thing that keeps
 * it alive. Needs a built dist/ (`npm test` builds it).
 */
const STOP_DEADLINE = new URL('../../dist/cli/stop-deadline.js', import.meta.url).href
const LOGGING = new URL('../../dist/core/logging.js', import.meta.url).href

async function runStop (stop: 'hangs' | 'finishes, server left open' | 'finishes, all closed'): Promise<{ code: number, output: string }> {
  const script = `
    import { createServer } from 'node:net'
    import { stopWithin } from '${STOP_DEADLINE}'
    import { createLogger } from '${LOGGING}'
    const server = createServer().listen(0, '127.0.0.1')
    const stop = ${JSON.stringify(stop)}
    await stopWithin('test', createLogger({ level: 'info' }), async () => {
      if (stop === 'hangs') await new Promise(() => {})
      if (stop === 'finishes, all closed') await new Promise(resolve => server.close(resolve))
    }, { stopMs: 300, lingerMs: 200 })
  `
  return promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], { timeout: 30_000 })
    .then(({ stdout, stderr }) => ({ code: 0, output: stdout + stderr }), (err: { code: number, stdout: string, stderr: string }) => ({ code: err.code, output: err.stdout + err.stderr }))
}

it('gives up a stop that does not finish, naming what is still open, and exits 1', async () => {
  const { code, output } = await runStop('hangs')
  expect(code).toBe(1)
  expect(output).toMatch(/test: still stopping after 300 ms, exiting; still open: .*TCPServerWrap/)
})

it('ends a process that something keeps alive after its stop finished, naming it, with exit 0', async () => {
  const { code, output } = await runStop('finishes, server left open')
  expect(code).toBe(0)
  expect(output).toMatch(/test: stopped, but still running 200 ms later, exiting; still open: .*TCPServerWrap/)
})

it('lets a clean stop end the process on its own, with nothing logged', async () => {
  const { code, output } = await runStop('finishes, all closed')
  expect(code).toBe(0)
  expect(output).toBe('')
})
