// Inspection inside a worker_thread. Node tracks the descriptors a worker
// opens with fs.open() until fs.close() closes them; the descriptors an
// inspection reads a lock file through are closed by the addon (through the
// posix table), so they are opened by it too (src/lock/reader.ts): Node must
// neither warn about a number it still tracks ("File descriptor N opened in
// unmanaged mode twice") nor have anything of ours to close at the worker's exit.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type ChildOutput, fixture, type Holder, holdInChild, outputOf, tempDir } from '../helpers.js';

let dir: string;
let cleanup: () => void;
const holders: Holder[] = [];
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-inspect-worker-'));
});
afterEach(async () => {
  for (const h of holders.splice(0)) await h.kill('SIGKILL');
  cleanup();
});

/** Runs test/fixtures/inspect-in-worker.mjs on `target`; resolves with its exit code, stdout and stderr. */
function inspectInWorker(target: string): Promise<ChildOutput> {
  return outputOf(spawn(process.execPath, [fixture('inspect-in-worker.mjs'), target, path.join(dir, 'mine.lock')]));
}

describe('inspect() in a worker_thread', () => {
  for (const kind of ['flock', 'ofd', 'posix'] as const) {
    it(`names the ${kind} holder again and again, and Node prints no warning about descriptors`, async () => {
      const target = path.join(dir, `${kind}.lock`);
      const holder = await holdInChild(target, { kind });
      holders.push(holder);
      const { code, stdout, stderr } = await inspectInWorker(target);
      expect(stderr).not.toMatch(/unmanaged mode/);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      const report = JSON.parse(stdout) as { pids: (number | null)[][]; stillHeld: boolean };
      expect(report.pids.flat()).toEqual(Array(12).fill(holder.pid));
      // The main thread's lock, taken while the worker ran, outlived the worker.
      expect(report.stillHeld).toBe(true);
    });
  }
});
