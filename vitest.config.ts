import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    exclude: ['test/stack/**'],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Tests spawn Bun subprocesses and servers: keep the two cores from thrashing.
    maxWorkers: 2,
  },
});
