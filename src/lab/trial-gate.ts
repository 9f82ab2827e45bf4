/**
 * The trial runner's start gate for daemons, loaded with `node --import <this file> dist/cli/index.js peer ...`.
 *
 * Loading natmesh's modules takes a Node process 0.6-1.3 s, longer than a whole hole punch in the lab. The runner
 * therefore starts the next trial's peers while the current trial's peers shut down: this module loads the modules
 * named in $NM_LAB_PRELOAD (comma-separated paths; loading them opens no socket), then blocks, before the CLI's own
 * code runs, until the runner writes one line to stdin: a JSON array of extra CLI arguments (e.g. `["--dial", id]`),
 * appended to process.argv. Only then does the daemon start and touch the network. Stdin closing without a line
 * means the trial was cancelled: the process exits quietly.
 */
import { pathToFileURL } from 'node:url'

const preload = (process.env.NM_LAB_PRELOAD ?? '').split(',').filter((p) => p !== '')
delete process.env.NM_LAB_PRELOAD
await Promise.all(preload.map(async (path) => await import(pathToFileURL(path).href)))

const line = await new Promise<string | undefined>((resolve) => {
  let buffered = ''
  const onData = (chunk: string): void => {
    buffered += chunk
    const nl = buffered.indexOf('\n')
    if (nl < 0) return
    process.stdin.off('data', onData)
    process.stdin.off('end', onEnd)
    process.stdin.pause()
    resolve(buffered.slice(0, nl))
  }
  const onEnd = (): void => { resolve(undefined) }
  process.stdin.setEncoding('utf8').on('data', onData).once('end', onEnd)
})

if (line === undefined) process.exit(0)
let extra: unknown
try {
  extra = JSON.parse(line)
} catch {
  extra = undefined
}
if (!Array.isArray(extra) || !extra.every((a) => typeof a === 'string')) {
  process.stderr.write(`natmesh lab gate: expected a JSON array of strings on stdin, got ${line.slice(0, 200)}\n`)
  process.exit(2)
}
process.argv.push(...extra)
// the daemon never reads stdin; a closed pipe must not keep it alive or wake it
process.stdin.destroy()
