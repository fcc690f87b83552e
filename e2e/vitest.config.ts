import { defineConfig } from 'vitest/config';

// The end-to-end suite: the published runtime, installed from the npm
// registry into a cache folder, run for real against a mock model.
export default defineConfig({
  test: {
    include: ['e2e/**/*.test.ts'],
    globalSetup: ['e2e/global-setup.ts'],
    // One file at a time: each runs several runtime processes at once, and
    // their timing bounds (a grant within a second of a kill) are for a
    // machine that is busy, not one running both files together.
    fileParallelism: false,
    pool: 'forks',
    testTimeout: 120_000,
    hookTimeout: 600_000,
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-results/e2e.json' }]] : ['default'],
  },
});
