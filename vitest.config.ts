import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // lab tests start real processes in network namespaces; they share one machine, so run files one at a time
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000
  }
})
