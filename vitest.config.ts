import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/stack/**', 'test/compose/**'],
    // Every tool runs through the sandbox wrapper: build it first (Go, cached).
    globalSetup: ['test/support/sandbox-wrapper.ts'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Tests spawn Bun subprocesses and servers: keep the two cores from thrashing.
    maxWorkers: 2,
  },
});
