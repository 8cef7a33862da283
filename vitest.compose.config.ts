import { defineConfig } from 'vitest/config';

/**
 * The compose test (npm run test:compose, through scripts/compose/test.sh): docker-compose.yml on rootful
 * podman. One file, phases in order; forks, so that replacing `fetch` with the in-network one stays in it.
 */
export default defineConfig({
  test: {
    include: ['test/compose/**/*.test.ts'],
    pool: 'forks',
    maxWorkers: 1,
    fileParallelism: false,
    testTimeout: 900_000,
    hookTimeout: 240_000,
    reporters: ['default'],
  },
});
