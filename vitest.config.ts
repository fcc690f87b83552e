import { configDefaults, defineConfig } from 'vitest/config';

// Test files that load the whole host: they run alone, after every other
// file. test/inspect/event-loop.test.ts holds 10,000 flock, then 10,000 OFD
// locks in one process; running beside it, any test that names an OFD
// holder by searching /proc/*/fdinfo (bounded, as it must be) would find its
// budget spent on those descriptors, and its own event-loop measurements
// would include the other files' CPU.
const ALONE = ['test/inspect/event-loop.test.ts'];

export default defineConfig({
  test: {
    // Real processes, real kernels: generous timeouts, and forks so a test
    // file owns its process (its descriptors, threads and signals) outright.
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // CI reads the JSON report to print "N passed, M failed".
    reporters: process.env.CI ? ['default', ['json', { outputFile: 'test-results/vitest.json' }]] : ['default'],
    projects: [
      {
        extends: true,
        test: {
          name: 'shared',
          include: ['test/**/*.test.ts'],
          exclude: [...configDefaults.exclude, ...ALONE],
          // A throwaway PostgreSQL for the kernel-lock/pg tests, when the run
          // has any and the environment names none (KERNEL_LOCK_PG_URL), and
          // the prebuilt binaries for the package tests: once per run.
          globalSetup: ['test/global-setup.ts'],
          sequence: { groupOrder: 0 },
        },
      },
      { extends: true, test: { name: 'alone', include: ALONE, sequence: { groupOrder: 1 } } },
    ],
  },
});
