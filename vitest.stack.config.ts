import { defineConfig } from 'vitest/config';

/**
 * Stack tests (npm run test:stack): the real Collector, Prometheus, Jaeger (trace store), VictoriaLogs (log store)
 * and Alertmanager on loopback.
 * One file, one stack, phases in order; forks (not threads) so the harness's exit and signal handlers
 * run in the worker that owns the processes.
 */
export default defineConfig({
  test: {
    include: ['test/stack/**/*.test.ts'],
    // Every tool runs through the sandbox wrapper: build it first (Go, cached).
    globalSetup: ['test/support/sandbox-wrapper.ts'],
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 600_000,
    hookTimeout: 420_000,
    teardownTimeout: 120_000,
    reporters: ['default'],
  },
});
