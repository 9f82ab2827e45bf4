/**
 * Preloaded (`node --import`) into the peer daemon bench:footprint starts: prints each performance mark the CLI
 * sets on its way up (src/cli/peer-command.ts STARTUP_MARKS) as a JSON line on stdout, {"startupMark", "ms"}
 * with ms since the process started, and `node:ready` for the moment Node itself was up and ran this file. On
 * SIGUSR2 it prints {"memory": {…}}, where the resident memory goes (MiB): the V8 heap, its code space, and
 * what V8 counts as external.
 */
import { getHeapSpaceStatistics } from 'node:v8'
import { PerformanceObserver, performance } from 'node:perf_hooks'

const print = (line: unknown): void => { process.stdout.write(JSON.stringify(line) + '\n') }
print({ startupMark: 'node:ready', ms: performance.now() })
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) print({ startupMark: entry.name, ms: entry.startTime })
}).observe({ entryTypes: ['mark'] })

const mib = (bytes: number): number => Number((bytes / 2 ** 20).toFixed(1))
process.on('SIGUSR2', () => {
  const { rss, heapTotal, heapUsed, external } = process.memoryUsage()
  const code = getHeapSpaceStatistics().filter(space => space.space_name.includes('code')).reduce((sum, space) => sum + space.physical_space_size, 0)
  print({ memory: { rss: mib(rss), heapTotal: mib(heapTotal), heapUsed: mib(heapUsed), code: mib(code), external: mib(external), nonHeap: mib(rss - heapTotal) } })
})
