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
// The cluster is stopped by the teardown, and also when vitest dies without
// one (SIGKILL, a CI timeout): a detached watchdog holds the read end of a
// pipe from this process, and the kernel closing that pipe at our exit,
// however it happens, is what makes it stop the cluster. No polling.
//
// The prebuilt binaries (four zig builds; the first on a machine downloads
// zig and compiles its C++ runtime: minutes, later builds hit the cache in
// ~/.cache/kernel-lock) are built once here, before any test runs, for the
// test files that ship them (test/package/prebuilt.ts reads
// KERNEL_LOCK_TEST_PREBUILT); a cold build then competes with no test for the
// CPU. The old systems of the load matrix are provisioned by its test
// (scripts/prebuild/load-matrix.mjs --provision, cached too).
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { TestProject } from 'vitest/node';
import { clusterScript, startClusterVariables, stopCluster } from './pg/helpers.js';

const PG_TEST = /\/test\/(pg\/|cli\/pg\.test\.ts$)/;
const PREBUILT_TEST = /\/test\/package\/(prebuilds|load)\.test\.ts$/;
const PREFIX = 'klpg-run-';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** The test files this run includes (a filtered run of a few files needs no server and no prebuilds). */
async function selectedFiles(project: TestProject): Promise<string[]> {
  // The command line's file filters; the name is vitest's own (internal, so
  // without it every file counts as selected).
  const filters = (project.vitest as unknown as { filenamePattern?: string[] }).filenamePattern ?? [];
  const specs = await project.vitest.globTestSpecifications(filters);
  return specs.map((spec) => spec.moduleId);
}

// Runs detached (its own session: a terminal's Ctrl-C does not reach it), so
// it outlives vitest; stdin is a pipe whose other end only vitest holds.
const WATCHDOG = `
const stop = () => require('node:child_process').spawnSync(process.argv[1], ['stop', process.argv[2]], { stdio: 'ignore' });
process.stdin.on('data', () => {}).on('end', stop).on('error', stop);
`;

/** Stops the cluster in `dir` when this process exits, whatever ends it; the teardown kills it first. */
function watchCluster(dir: string): () => void {
  const watchdog = spawn(process.execPath, ['-e', WATCHDOG, clusterScript, dir], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  watchdog.unref();
  (watchdog.stdin as unknown as { unref(): void }).unref();
  return () => watchdog.kill('SIGKILL');
}

/** Builds the four prebuilt binaries into a temporary package directory; its path, or undefined when the build failed. */
function buildPrebuilt(): string | undefined {
  const dir = mkdtempSync(path.join(tmpdir(), 'kernel-lock-prebuilt-'));
  const started = Date.now();
  const built = spawnSync(process.execPath, [path.join(root, 'scripts', 'build-prebuilds.mjs'), '--out', dir], {
    encoding: 'utf8',
  });
  if (built.status !== 0) {
    // The test files build it themselves and report the failure where it belongs.
    process.stderr.write(`test/global-setup.ts: prebuilt binaries not built:\n${built.stdout}${built.stderr}\n`);
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  process.stderr.write(`test/global-setup.ts: prebuilt binaries in ${dir} (${Date.now() - started} ms)\n`);
  return dir;
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

export default async function setup(project: TestProject): Promise<() => void> {
  const files = await selectedFiles(project);
  const teardowns: (() => void)[] = [];
  if (files.some((file) => PREBUILT_TEST.test(file))) {
    const prebuilt = buildPrebuilt();
    if (prebuilt !== undefined) {
      process.env.KERNEL_LOCK_TEST_PREBUILT = prebuilt;
      teardowns.push(() => rmSync(prebuilt, { recursive: true, force: true }));
    }
  }
  if (!process.env.KERNEL_LOCK_PG_URL && files.some((file) => PG_TEST.test(file))) {
    const stop = startPostgres();
    if (stop !== undefined) teardowns.push(stop);
  }
  return () => {
    for (const teardown of teardowns.reverse()) teardown();
  };
}

/** Starts the run's cluster and exports its variables; the function that stops it, or undefined when none could start. */
function startPostgres(): (() => void) | undefined {
  stopAbandoned();
  const dir = path.join(tmpdir(), `${PREFIX}${process.pid}`);
  let variables: Record<string, string>;
  const unwatch = watchCluster(dir);
  try {
    variables = startClusterVariables(dir);
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    const reason = stderr.split('\n').pop() || (error as Error).message;
    process.env.KERNEL_LOCK_PG_UNAVAILABLE = reason.replace(/^pg-cluster: /, '');
    process.stderr.write(`test/global-setup.ts: no PostgreSQL test cluster: ${reason}\n`);
    if (existsSync(dir)) stopCluster(dir);
    unwatch();
    return undefined;
  }
  Object.assign(process.env, variables);
  process.stderr.write(
    `test/global-setup.ts: PostgreSQL test cluster in ${dir} (${variables.KERNEL_LOCK_PG_URL}), stopped after the run\n`,
  );
  return () => {
    stopCluster(dir);
    unwatch();
    for (const name of Object.keys(variables)) delete process.env[name];
  };
}
