// The unlink race: with removeOnRelease every release deletes the file that
// the next acquirer may already have opened. Four processes (two waiting
// asynchronously on native threads, two with lockSync) hand one lock around
// 500 times each; a counter read-modify-written inside the lock and an
// O_EXCL "inside" marker prove no two holders ever overlapped.
import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { fixture, lineFrom, tempDir } from '../helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

const PROCESSES = 4;
const ITERATIONS = 500;

it(`${PROCESSES} processes x ${ITERATIONS} acquisitions with removeOnRelease never overlap`, async () => {
  const lockPath = path.join(dir, 'race.lock');
  const counterPath = path.join(dir, 'counter');
  writeFileSync(counterPath, '0');
  const started = performance.now();
  const results = await Promise.all(
    Array.from({ length: PROCESSES }, (_, i) => {
      const style = i % 2 === 0 ? 'async' : 'sync';
      const child = spawn(
        process.execPath,
        [fixture('core-counter.mjs'), lockPath, counterPath, String(ITERATIONS), style],
        { stdio: ['ignore', 'pipe', 'pipe'] },
      );
      return lineFrom(child, 'done', 60_000);
    }),
  );
  const elapsed = performance.now() - started;
  expect(results.map((line) => line.split(' ')[1])).toEqual(Array(PROCESSES).fill('0'));
  expect(Number(readFileSync(counterPath, 'utf8'))).toBe(PROCESSES * ITERATIONS);
  expect(existsSync(lockPath)).toBe(false); // the last release removed it
  expect(elapsed).toBeLessThan(20_000);
});
