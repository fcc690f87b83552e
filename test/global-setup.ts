// Makes `npm test` self-contained. The PostgreSQL engine is tested against a
// real server: unless the environment names one already (KERNEL_LOCK_PG_URL,
// a cluster you started with scripts/pg-cluster.sh), a throwaway cluster is
// started for the run and stopped after it, by scripts/pg-cluster.sh, the one
// way this repository makes clusters (the tests' private clusters and the
// benchmarks use it too). As root the script runs the server as the system
// user klpg (PostgreSQL refuses root) and installs what is missing; as a
// normal user, as that user, with the machine's PostgreSQL. Only runs that
// include a PostgreSQL test file pay for it.
//
// When no cluster can be started (a normal user on a machine without
// PostgreSQL), the reason goes to KERNEL_LOCK_PG_UNAVAILABLE: the PostgreSQL
// tests are then skipped with one line each, except in CI, where they fail
// (test/pg/helpers.ts, test/privileges.ts).
//
// The other systems the tests need are set up by the tests themselves: the
// prebuilt binaries and the old systems of the load matrix
// (test/package/prebuilt.ts, scripts/prebuild/load-matrix.mjs --provision,
// cached in ~/.cache/kernel-lock after the first run).
import { existsSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestProject } from 'vitest/node';
import { startClusterVariables, stopCluster } from './pg/helpers.js';

const PG_TEST = /\/test\/(pg\/|cli\/pg\.test\.ts$)/;
const PREFIX = 'klpg-run-';

/** Whether this run includes a PostgreSQL test file (a filtered run of other files needs no server). */
async function wantsPostgres(project: TestProject): Promise<boolean> {
  // The command line's file filters; the name is vitest's own (internal, so
  // without it every file counts as selected).
  const filters = (project.vitest as unknown as { filenamePattern?: string[] }).filenamePattern ?? [];
  const specs = await project.vitest.globTestSpecifications(filters);
  return specs.some((spec) => PG_TEST.test(spec.moduleId));
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Clusters of earlier runs that died without their teardown (killed vitest): ours by name, their run's pid gone. */
function stopAbandoned(): void {
  for (const name of readdirSync(tmpdir())) {
    const pid = Number(name.slice(PREFIX.length));
    if (!name.startsWith(PREFIX) || !Number.isInteger(pid) || alive(pid)) continue;
    try {
      stopCluster(path.join(tmpdir(), name));
    } catch {
      // not ours after all, or half made: leave it
    }
  }
}

export default async function setup(project: TestProject): Promise<(() => void) | undefined> {
  if (process.env.KERNEL_LOCK_PG_URL || !(await wantsPostgres(project))) return undefined;
  stopAbandoned();
  const dir = path.join(tmpdir(), `${PREFIX}${process.pid}`);
  let variables: Record<string, string>;
  try {
    variables = startClusterVariables(dir);
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    const reason = stderr.split('\n').pop() || (error as Error).message;
    process.env.KERNEL_LOCK_PG_UNAVAILABLE = reason.replace(/^pg-cluster: /, '');
    process.stderr.write(`test/global-setup.ts: no PostgreSQL test cluster: ${reason}\n`);
    if (existsSync(dir)) stopCluster(dir);
    return undefined;
  }
  Object.assign(process.env, variables);
  process.stderr.write(
    `test/global-setup.ts: PostgreSQL test cluster in ${dir} (${variables.KERNEL_LOCK_PG_URL}), stopped after the run\n`,
  );
  return () => {
    stopCluster(dir);
    for (const name of Object.keys(variables)) delete process.env[name];
  };
}
