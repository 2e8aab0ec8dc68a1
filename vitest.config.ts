import { defineConfig } from 'vitest/config';

// Tests that need a real tor (`*.tor.test.ts`) share one private Tor network, started once per run by
// test/global-setup.ts and torn down after it; each such test starts its own agent tor against it.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
    minWorkers: 1,
    reporters: ['default'],
  },
});
