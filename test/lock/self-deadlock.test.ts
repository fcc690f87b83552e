// A synchronous wait on a lock the same thread holds would block the only
// thread that can release it: every kind fails fast with EDEADLK instead
// (issue 10, point 5). Ranges and modes that do not conflict still lock.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type LockKind, lockSync, type SystemError } from '../../src/index.js';
import { root, tempDir } from '../helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-self-deadlock-'));
});
afterEach(() => cleanup());

const KINDS: LockKind[] = ['flock', 'ofd', 'posix'];

function thrown(fn: () => unknown): SystemError {
  try {
    fn();
  } catch (error) {
    return error as SystemError;
  }
  throw new Error('did not throw');
}

describe('lockSync on a lock this thread holds', () => {
  it.each(KINDS)('%s: throws EDEADLK at once instead of waiting out its timeout', (kind) => {
    const file = path.join(dir, `${kind}.lock`);
    const held = lockSync(file, { kind });
    const started = performance.now();
    const error = thrown(() => lockSync(file, { kind, timeout: 5_000 }));
    expect(error.code).toBe('EDEADLK');
    expect(error.message).toMatch(/this thread already holds a conflicting lock/);
    expect(performance.now() - started).toBeLessThan(1_000);
    held.releaseSync();
    lockSync(file, { kind }).releaseSync(); // and nothing was left behind
  });

  it('ofd: a disjoint range, or shared after shared, still locks', () => {
    const file = path.join(dir, 'ranges.lock');
    const low = lockSync(file, { kind: 'ofd', range: { start: 0, length: 10 } });
    const high = lockSync(file, { kind: 'ofd', range: { start: 10, length: 10 }, timeout: 1_000 });
    const overlapping = thrown(() => lockSync(file, { kind: 'ofd', range: { start: 5, length: 10 }, timeout: 2_000 }));
    expect(overlapping.code).toBe('EDEADLK');
    low.releaseSync();
    high.releaseSync();
    const reader = lockSync(file, { kind: 'ofd', mode: 'shared' });
    lockSync(file, { kind: 'ofd', mode: 'shared', timeout: 1_000 }).releaseSync();
    expect(thrown(() => lockSync(file, { kind: 'ofd', timeout: 2_000 })).code).toBe('EDEADLK');
    reader.releaseSync();
  });

  it.each(KINDS)('%s without a timeout, in a process of its own: EDEADLK, never a hang', (kind) => {
    // Were it to hang, only a kill could end it: run it where that is safe.
    const file = path.join(dir, `child-${kind}.lock`);
    const script = `
      const { lockSync } = await import(${JSON.stringify(path.join(root, 'dist', 'index.js'))});
      const held = lockSync(${JSON.stringify(file)}, { kind: '${kind}' });
      try { lockSync(${JSON.stringify(file)}, { kind: '${kind}' }); console.log('locked twice'); }
      catch (error) { console.log(error.code); }
      held.releaseSync();`;
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', script], { timeout: 10_000 });
    expect(child.signal).toBeNull();
    expect(child.stdout.toString().trim()).toBe('EDEADLK');
  });
});
