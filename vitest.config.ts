import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // A throwaway PostgreSQL for the kernel-lock/pg tests, when the run has any
    // and the environment names none (KERNEL_LOCK_PG_URL).
    globalSetup: ['test/global-setup.ts'],
    // Real processes, real kernels: generous timeouts, and forks so a test
    // file owns its process (its descriptors, threads and signals) outright.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // CI reads the JSON report to print "N passed, M failed".
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-results/vitest.json' }]] : ['default'],
  },
});
