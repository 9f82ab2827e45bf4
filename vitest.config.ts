import { availableParallelism } from 'node:os'
import { defineConfig } from 'vitest/config'

/**
 * Files that only use loopback (or namespaces under a prefix of their own) run side by side; vitest's default of
 * "cores - 1" workers would run them one at a time on a 2-core machine, and they mostly wait on sockets.
 */
const PARALLEL_WORKERS = Math.max(2, availableParallelism())

export default defineConfig({
  test: {
    testTimeout: 60_000,
    hookTimeout: 120_000,
    projects: [
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'], maxWorkers: PARALLEL_WORKERS } },
      { extends: true, test: { name: 'integration', include: ['test/integration/**/*.test.ts', 'test/transport/**/*.test.ts'], maxWorkers: PARALLEL_WORKERS } },
      { extends: true, test: { name: 'cli', include: ['test/cli/**/*.test.ts'], maxWorkers: PARALLEL_WORKERS } },
      {
        extends: true,
        test: {
          name: 'lab',
          include: ['test/lab/**/*.test.ts', 'test/docker/**/*.test.ts'],
          // real NATs in namespaces and a dockerd: they share one machine's CPU and timing, so one file at a time,
          // after the parallel projects have finished
          fileParallelism: false,
          sequence: { groupOrder: 1 }
        }
      }
    ]
  }
})
