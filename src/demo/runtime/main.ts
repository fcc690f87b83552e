// `kernel-lock demo --runtime openclaw@<version>`: the barrage's holder
// scenarios replayed in the real runtime (installed from the npm registry
// into a cache folder on first use), with its stock lock and with
// kernel-lock through the `--import` hook, against a mock model.
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ensureRuntime, runtimeCacheDir } from './install.js';
import { MockModel } from './mock-model.js';
import { renderRuntimeReport } from './report.js';
import {
  RUNTIME_BACKENDS,
  type RuntimeContext,
  type RuntimeRow,
  type RuntimeScenario,
  runRuntimeScenario,
} from './scenarios.js';

/** What `--runtime` runs. */
export interface RuntimeDemoOptions {
  spec: string;
  scenarios: readonly RuntimeScenario[];
  followers: number;
  json: boolean;
  keep: boolean;
  /** kernel-lock's package root (what `--import kernel-lock/openclaw/register` resolves to). */
  kernelLockRoot: string;
}

/** At most this many scenario runs at once (each starts real runtime processes). */
const PARALLEL = 4;

/** A TCP port nothing listens on right now (for the runtime's gateway attempt, which must fail). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

/** Whether a kernel-lock row shows what it must: served by the hook, never overlapped, full success where the holder died. */
export function runtimeRowOk(row: RuntimeRow): boolean {
  if (row.backend !== 'kernel-lock') return true;
  if (row.lockRecord !== 'kernel-lock' || row.overlappingCalls > 0 || row.forkedEntries > 0) return false;
  return row.scenario === 'c' || row.scenario === 'd' ? true : row.followersOk === row.followers;
}

/** Runs the demo in the real runtime; resolves with the exit status. */
export async function runRuntimeDemo(options: RuntimeDemoOptions): Promise<number> {
  const log = (line: string): void => {
    process.stderr.write(`${line}\n`);
  };
  const runtime = await ensureRuntime(options.spec, { log });
  if (runtime.installed) log(`installed in ${runtime.installSeconds.toFixed(0)} s`);
  const model = await MockModel.start();
  const root = mkdtempSync(path.join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'kernel-lock-demo-runtime-'));
  const ctx: RuntimeContext = {
    runtime,
    model,
    root,
    kernelLockRoot: options.kernelLockRoot,
    compileCache: path.join(runtimeCacheDir(), 'compile-cache'),
    gatewayPort: await freePort(),
    followers: options.followers,
    runId: `demo${process.pid}`,
    log,
  };
  const started = performance.now();
  const runs = options.scenarios.flatMap((scenario) => RUNTIME_BACKENDS.map((backend) => ({ scenario, backend })));
  const rows: RuntimeRow[] = new Array(runs.length);
  try {
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < runs.length) {
        const index = next++;
        const { scenario, backend } = runs[index]!;
        rows[index] = await runRuntimeScenario(ctx, scenario, backend);
      }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL, runs.length) }, worker));
  } finally {
    await model.close();
    if (!options.keep) rmSync(root, { recursive: true, force: true });
  }
  const ok = rows.every(runtimeRowOk);
  const wallSeconds = (performance.now() - started) / 1000;
  if (options.json) {
    process.stdout.write(
      `${JSON.stringify({ runtime: options.spec, ok, wallSeconds, stateDir: root, rows }, null, 2)}\n`,
    );
  } else {
    process.stdout.write(`${renderRuntimeReport(rows, options.spec)}\n`);
    process.stdout.write(
      `\n${rows.length} runs in ${wallSeconds.toFixed(0)} s; state in ${root}${options.keep ? '' : ' (removed)'}.\n`,
    );
    if (!ok)
      process.stdout.write(
        'FAILED: a kernel-lock row was not served by the hook, overlapped, forked, or lost an invocation to a dead holder.\n',
      );
  }
  return ok ? 0 : 1;
}
