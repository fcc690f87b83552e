// posix locks take bounded descriptors (issue 10, point 3): one per inode
// per process, plus only what pending waits truly need. An acquisition
// that joins an inode the process already has open reuses its descriptor.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lock } from '../../src/index.js';
import { fdCount, fixture, holdInChild, lastJsonLine, outputOf, sleep, tempDir } from '../helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-posix-fds-'));
});
afterEach(() => cleanup());

interface LoopReport {
  done: number;
  failures: number;
  firstError: string | null;
  samples: number[];
}

/** Runs the two-loop fixture in a child, under `ulimit -n` when given. */
function loops(total: number, limit: number | null, options: object = {}): Promise<LoopReport> {
  const file = path.join(dir, `loops-${limit ?? 'default'}.lock`);
  const command = [process.execPath, fixture('posix-loops.mjs'), file, String(total), JSON.stringify(options)]
    .map((a) => `'${a}'`)
    .join(' ');
  const child = spawn('sh', ['-c', `${limit === null ? '' : `ulimit -n ${limit} && `}exec ${command}`], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return outputOf(child).then((output) => lastJsonLine('posix-loops', output) as unknown as LoopReport);
}

describe('posix descriptors stay bounded', () => {
  it('two overlapping lock() loops, 20 000 acquisitions: a flat descriptor count', async () => {
    const report = await loops(20_000, null);
    console.log(`posix loops, default limit: descriptors ${report.samples.join(' ')}`);
    expect(report.failures, report.firstError ?? '').toBe(0);
    expect(report.done).toBeGreaterThanOrEqual(20_000);
    expect(Math.max(...report.samples) - report.samples[0]!).toBeLessThanOrEqual(2);
  });

  it('the same at ulimit -n 1024', async () => {
    const report = await loops(20_000, 1024);
    console.log(`posix loops, ulimit -n 1024: descriptors ${report.samples.join(' ')}`);
    expect(report.failures, report.firstError ?? '').toBe(0);
    expect(report.done).toBeGreaterThanOrEqual(20_000);
    expect(Math.max(...report.samples) - report.samples[0]!).toBeLessThanOrEqual(2);
  });

  it('1 000 queued waiters on a held inode share one descriptor', async () => {
    const file = path.join(dir, 'queued.lock');
    const base = fdCount();
    const holder = await holdInChild(file, { kind: 'posix' });
    const before = fdCount();
    const controller = new AbortController();
    const waits = Array.from({ length: 1000 }, () =>
      lock(file, { kind: 'posix', signal: controller.signal }).then(
        (h) => h.release(),
        (e: unknown) => e,
      ),
    );
    await sleep(200);
    const during = fdCount();
    console.log(`1 000 queued posix waiters: ${during - before} more descriptors`);
    // The inode's one descriptor; the queued acquisitions need none.
    expect(during - before).toBeLessThanOrEqual(1);
    controller.abort();
    await Promise.all(waits);
    await holder.kill();
    expect(fdCount()).toBe(base);
  });
});
