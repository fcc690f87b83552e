// Load: one process holding 10 000 distinct locks, and 256 waiters spread
// over 8 processes on one lock.
import { spawn } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lock } from '../../src/index.js';
import { lineFrom, tempDir } from '../helpers.js';
import { runNode } from './fixtures/run-child.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-load-'));
});
afterEach(() => cleanup());

describe('load', () => {
  it('one process holds 10 000 distinct locks (ulimit -n 20000); others are excluded; all released cleanly', async () => {
    const result = await runNode(
      `import { readdirSync } from 'node:fs';
       import { spawnSync } from 'node:child_process';
       const dir = ${JSON.stringify(dir)};
       const fds = () => readdirSync('/proc/self/fd').length;
       const before = fds();
       let t = performance.now();
       const handles = [];
       for (let i = 0; i < 10000; i++) handles.push(await kl.lock(dir + '/' + i + '.lock', { timeout: 0, removeOnRelease: true }));
       const acquireMs = performance.now() - t;
       const held = fds() - before;
       const allValid = handles.every((h) => h.verify());
       // Another process (util-linux flock) is refused on a sample of them.
       let refused = 0;
       for (let i = 0; i < 10000; i += 500) refused += spawnSync('flock', ['-n', dir + '/' + i + '.lock', 'true']).status === 1 ? 1 : 0;
       t = performance.now();
       for (const h of handles) await h.release();
       const releaseMs = performance.now() - t;
       report({ held, allValid, refused, acquireMs: Math.round(acquireMs), releaseMs: Math.round(releaseMs),
                left: readdirSync(dir).length, fdsBack: fds() === before });`,
      { shellSetup: 'ulimit -n 20000', timeoutMs: 120_000 },
    );
    console.log(`10 000 locks: ${JSON.stringify(result.json)}`);
    expect(result.json, result.stderr).toMatchObject({
      held: 10000,
      allValid: true,
      refused: 20,
      left: 0,
      fdsBack: true,
    });
  });

  for (const kind of ['flock', 'ofd'] as const) {
    it(`${kind}: 256 waiters over 8 processes on one lock are all served, one at a time`, async () => {
      const lockPath = path.join(dir, 'hot.lock');
      const held = await lock(lockPath, { kind });
      const children = Array.from({ length: 8 }, () =>
        spawn(process.execPath, [path.join(fixtures, 'many-waiters.mjs'), lockPath, '32', kind], {
          stdio: ['ignore', 'pipe', 'pipe'],
        }),
      );
      const done = children.map((child) => lineFrom(child, 'done', 120_000));
      const waiting = await Promise.all(children.map((child) => lineFrom(child, 'waiting', 60_000)));
      expect(waiting).toEqual(Array(8).fill('waiting 32')); // every wait sleeps on its own thread
      const released = performance.now();
      await held.release();
      const reports = (await Promise.all(done)).map((line) => JSON.parse(line.slice(5)));
      const totalMs = performance.now() - released;
      const longest = Math.max(...reports.map((r) => r.maxWaitMs));
      console.log(
        `${kind} 256 waiters: all served ${Math.round(totalMs)} ms after release; longest wait ${longest} ms`,
      );
      expect(reports.reduce((sum, r) => sum + r.served, 0)).toBe(256);
      expect(reports.reduce((sum, r) => sum + r.overlaps, 0)).toBe(0);
      expect(reports.every((r) => r.threadsAfter === 0)).toBe(true);
    });
  }
});
