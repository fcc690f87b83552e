// Locks between real processes: a SIGKILLed holder, util-linux flock(1) in
// both directions, the shared/exclusive matrix and byte ranges.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type LockKind, type LockMode, lock, tryLock } from '../../src/index.js';
import { holdInChild, lineFrom, probeInChild, tempDir } from '../helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

describe('a holder killed with SIGKILL', () => {
  it.each(['flock', 'ofd', 'posix'] as const)('%s: the waiting lock() in the parent gets the lock', async (kind) => {
    const file = path.join(dir, `kill-${kind}.lock`);
    const holder = await holdInChild(file, { kind, owner: 'victim' });
    const waiting = lock(file, { kind, timeout: 20_000 });
    const killed = performance.now();
    await holder.kill('SIGKILL');
    const handle = await waiting;
    // Generous bound for a shared machine; bench/ measures it precisely.
    expect(performance.now() - killed).toBeLessThan(2_000);
    expect(handle.verify()).toBe(true);
    handle.releaseSync();
  });
});

/** flock(1) holding `file` (-o: the lock stays with flock itself, not the shell it runs). */
async function flockHolder(file: string, shared: boolean): Promise<ChildProcess> {
  const args = [...(shared ? ['-s'] : []), '-o', file, '-c', 'echo locked; exec sleep 60'];
  const child = spawn('flock', args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  await lineFrom(child, 'locked');
  return child;
}

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {}
}

/** Exit status of `flock -n [-s] file true`: 0 when it got the lock, 1 when busy. */
function flockTry(file: string, shared: boolean): number | null {
  return spawnSync('flock', ['-n', ...(shared ? ['-s'] : []), file, 'true']).status;
}

describe('interop with util-linux flock(1)', () => {
  it('flock(1) holds exclusively: we wait, and get it when it dies', async () => {
    const file = path.join(dir, 'util.lock');
    const holder = await flockHolder(file, false);
    try {
      expect(await tryLock(file)).toBeNull();
      expect(await tryLock(file, { mode: 'shared' })).toBeNull();
      const waiting = lock(file, { timeout: 20_000 });
      process.kill(holder.pid!, 'SIGKILL');
      const handle = await waiting;
      handle.releaseSync();
    } finally {
      killGroup(holder);
    }
  });

  it('flock -s holds: we can share it but not take it exclusively', async () => {
    const file = path.join(dir, 'util-shared.lock');
    const holder = await flockHolder(file, true);
    try {
      expect(await tryLock(file)).toBeNull();
      const shared = await tryLock(file, { mode: 'shared' });
      expect(shared).not.toBeNull();
      shared?.releaseSync();
    } finally {
      killGroup(holder);
    }
  });

  it('we hold exclusively: flock -n and flock -n -s fail', async () => {
    const file = path.join(dir, 'ours.lock');
    const handle = await lock(file);
    expect(flockTry(file, false)).toBe(1);
    expect(flockTry(file, true)).toBe(1);
    handle.releaseSync();
    expect(flockTry(file, false)).toBe(0);
  });

  it('we hold shared: flock -n -s succeeds, flock -n fails', async () => {
    const file = path.join(dir, 'ours-shared.lock');
    const handle = await lock(file, { mode: 'shared', removeOnRelease: false });
    expect(flockTry(file, true)).toBe(0);
    expect(flockTry(file, false)).toBe(1);
    handle.releaseSync();
  });
});

describe('the shared/exclusive matrix across processes', () => {
  const kinds: LockKind[] = ['flock', 'ofd', 'posix'];
  const modes: LockMode[] = ['exclusive', 'shared'];
  for (const kind of kinds) {
    for (const held of modes) {
      it(`${kind}: another process holds ${held}`, async () => {
        const file = path.join(dir, `m-${kind}-${held}.lock`);
        const holder = await holdInChild(file, { kind, mode: held });
        for (const wanted of modes) {
          const expectBusy = held === 'exclusive' || wanted === 'exclusive';
          const handle = await tryLock(file, { kind, mode: wanted });
          expect(handle === null, `${wanted} while ${held} is held`).toBe(expectBusy);
          handle?.releaseSync();
        }
        await holder.kill();
      });
    }
  }
});

describe('byte ranges across processes', () => {
  it.each(['ofd', 'posix'] as const)('%s: disjoint ranges coexist, overlapping ones conflict', async (kind) => {
    const file = path.join(dir, `ranges-${kind}.lock`);
    const holder = await holdInChild(file, { kind, range: { start: 0, length: 10 } });
    const beside = await tryLock(file, { kind, range: { start: 10, length: 10 } });
    expect(beside).not.toBeNull();
    expect(await tryLock(file, { kind, range: { start: 9, length: 2 } })).toBeNull();
    // length 0 means "to the end of the file", which overlaps [0, 10).
    expect(await tryLock(file, { kind, range: { start: 5, length: 0 } })).toBeNull();
    // A third process: shared inside our exclusive range conflicts; beyond both ranges is free.
    expect(await probeInChild(file, { kind, range: { start: 12, length: 2 }, mode: 'shared' })).toBe('busy');
    expect(await probeInChild(file, { kind, range: { start: 30, length: 2 } })).toBe('locked');
    beside?.releaseSync();
    await holder.kill();
    const whole = await tryLock(file, { kind });
    expect(whole).not.toBeNull();
    whole?.releaseSync();
  });
});
