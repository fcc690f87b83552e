// Before any test file: every runtime the suite runs, and the Node they
// share, installed from the npm registry into the cache side by side (npm is
// mostly waiting on the network), instead of one file after the other. Each
// file's own ensureRuntime() then finds them in the cache.
import { ensureRuntime } from '../src/demo/runtime/install.js';

/** The runtimes the suite runs (e2e/openclaw, e2e/fs-safe). */
export const E2E_RUNTIMES = ['openclaw@2026.4.24', 'openclaw@2026.9.6'] as const;

export default async function setup(): Promise<void> {
  const started = performance.now();
  const log = (line: string): void => {
    process.stderr.write(`[e2e setup ${((performance.now() - started) / 1000).toFixed(0)}s] ${line}\n`);
  };
  const installed = await Promise.all(E2E_RUNTIMES.map((spec) => ensureRuntime(spec, { log })));
  for (const runtime of installed) {
    log(`${runtime.spec}: ${runtime.installed ? `installed in ${runtime.installSeconds.toFixed(0)} s` : 'cached'}`);
  }
}
