// Process lifecycle: signals, process.exit() and uncaught exceptions with
// waits pending or locks held, and long runs of acquire/release cycles.
import { spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lock } from '../../src/index.js';
import { lineFrom, tempDir } from '../helpers.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-lifecycle-'));
});
afterEach(() => cleanup());

function startWaiters(lockPath: string, count: number, kind: string, action: string) {
  const child = spawn(process.execPath, [path.join(fixtures, 'waiters.mjs'), lockPath, String(count), kind, action], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const exited = new Promise<{ code: number | null; signal: string | null; at: number }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal, at: performance.now() })),
  );
  return { child, exited };
}

const KINDS = ['flock', 'ofd', 'posix'] as const;

describe('signals and exits with waits pending', () => {
  for (const kind of KINDS) {
    it(`${kind}: SIGTERM and SIGINT end a process with 8 pending waiters promptly`, async () => {
      const lockPath = path.join(dir, 'busy.lock');
      const held = await lock(lockPath, { kind });
      try {
        for (const signal of ['SIGTERM', 'SIGINT'] as const) {
          const { child, exited } = startWaiters(lockPath, 8, kind, 'wait');
          await lineFrom(child, 'waiting');
          const sent = performance.now();
          child.kill(signal);
          const result = await exited;
          expect(result.signal).toBe(signal);
          expect(result.at - sent).toBeLessThan(5000);
        }
        // A SIGTERM handler that calls process.exit(): the addon's teardown
        // interrupts and joins the waiter threads instead of hanging on them.
        const { child, exited } = startWaiters(lockPath, 8, kind, 'handler');
        await lineFrom(child, 'waiting');
        const sent = performance.now();
        child.kill('SIGTERM');
        const result = await exited;
        expect(result.code).toBe(3);
        expect(result.at - sent).toBeLessThan(5000);
      } finally {
        await held.release();
      }
    });

    it(`${kind}: process.exit() with 8 pending waiters does not hang`, async () => {
      const lockPath = path.join(dir, 'busy.lock');
      const held = await lock(lockPath, { kind });
      try {
        const started = performance.now();
        const { child, exited } = startWaiters(lockPath, 8, kind, 'exit');
        await lineFrom(child, 'waiting').catch(() => null);
        const result = await exited;
        expect(result.code).toBe(0);
        expect(result.at - started).toBeLessThan(5000);
      } finally {
        await held.release();
      }
    });

    it(`${kind}: an uncaught exception in a holder releases the lock through the kernel`, async () => {
      const lockPath = path.join(dir, 'thrower.lock');
      const { child, exited } = startWaiters(lockPath, 0, kind, 'throw');
      await lineFrom(child, 'holding');
      const waiting = lock(`${lockPath}.held`, { kind, timeout: 10_000 });
      const result = await exited;
      expect(result.code).toBe(1);
      const handle = await waiting;
      expect(performance.now() - result.at).toBeLessThan(5000);
      await handle.release();
    });
  }
});

// The sanitizer run (.ci/extra) asks for fewer: everything is slower under ASan.
const CYCLES = Number(process.env.KERNEL_LOCK_CYCLES ?? 20_000);

describe('acquire/release cycles keep RSS, descriptors and threads flat', () => {
  for (const kind of KINDS) {
    it(`${kind}: ${CYCLES} cycles (lock, lockSync, tryLock, timeouts, aborts)`, () => {
      const result = spawnSync(
        process.execPath,
        ['--expose-gc', path.join(fixtures, 'cycles.mjs'), kind, String(CYCLES)],
        {
          encoding: 'utf8',
          timeout: 60_000,
        },
      );
      const report = JSON.parse(result.stdout.trim().split('\n').pop() ?? 'null');
      console.log(`cycles: ${JSON.stringify(report)}`);
      expect(report, result.stderr).toMatchObject({ kind, cycles: CYCLES, flat: true });
      expect(report.fds[1]).toBe(report.fds[0]);
      expect(report.threads[1]).toBe(report.threads[0]);
    });
  }
});
