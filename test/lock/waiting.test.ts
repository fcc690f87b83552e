// Waiting: timeout and abort end a wait on time and leave nothing behind;
// waits never occupy libuv's threadpool; lockSync honours its timeout; the
// errors have the documented shapes.
import { readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AbortError, ELOCKED, LockTimeoutError, lock, lockSync, tryLock, tryLockSync } from '../../src/index.js';
import { native } from '../../src/native/binding.js';
import { fdCount, holdInChild, probeInChild, sleep, tempDir, threadCount } from '../helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

/** Descriptors, threads and native bookkeeping of this process right now. */
async function resources(): Promise<{ fds: number; threads: number; stats: [number, number, number] }> {
  // Start libuv's threadpool before the baseline: its lazily created threads
  // are not ours.
  await readFile(__filename);
  return { fds: fdCount(), threads: threadCount(), stats: native.stats() };
}

async function expectBackTo(baseline: {
  fds: number;
  threads: number;
  stats: [number, number, number];
}): Promise<void> {
  // Joined before the promise settles: no settling time needed for threads.
  expect(await resources()).toEqual(baseline);
}

describe('timeout and abort', () => {
  it.each(['flock', 'ofd', 'posix'] as const)(
    '%s: a timeout rejects on time and leaves nothing behind',
    async (kind) => {
      const file = path.join(dir, `t-${kind}.lock`);
      const holder = await holdInChild(file, { kind, owner: 'slow job' });
      const baseline = await resources();
      const started = performance.now();
      const error = await lock(file, { kind, timeout: 300 }).catch((e: unknown) => e);
      const elapsed = performance.now() - started;
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect(elapsed).toBeGreaterThanOrEqual(295);
      expect(elapsed).toBeLessThan(300 + 700);
      await expectBackTo(baseline);
      await holder.kill();
    },
  );

  it.each(['flock', 'ofd', 'posix'] as const)(
    '%s: an abort rejects at once and leaves nothing behind',
    async (kind) => {
      const file = path.join(dir, `a-${kind}.lock`);
      const holder = await holdInChild(file, { kind });
      const baseline = await resources();
      const controller = new AbortController();
      const waiting = lock(file, { kind, signal: controller.signal });
      await sleep(100); // in the kernel by now
      expect(native.stats()[1]).toBe(baseline.stats[1] + 1);
      expect(threadCount()).toBe(baseline.threads + 1);
      const reason = new Error('user pressed ^C');
      const aborted = performance.now();
      controller.abort(reason);
      const error = (await waiting.catch((e: unknown) => e)) as AbortError;
      expect(performance.now() - aborted).toBeLessThan(500);
      expect(error).toBeInstanceOf(AbortError);
      expect(error.name).toBe('AbortError');
      expect(error.code).toBe('ABORT_ERR');
      expect(error.cause).toBe(reason);
      expect(error.message).toContain(file);
      await expectBackTo(baseline);
      // The child still holds it: our cancelled wait left no lock behind.
      await holder.kill();
      expect(await probeInChild(file, { kind })).toBe('locked');
    },
  );

  it('an already-aborted signal rejects without touching the disk', async () => {
    const file = path.join(dir, 'pre.lock');
    const controller = new AbortController();
    controller.abort('early');
    await expect(lock(file, { signal: controller.signal })).rejects.toMatchObject({
      code: 'ABORT_ERR',
      cause: 'early',
    });
    expect(await probeInChild(file, { removeOnRelease: false })).toBe('locked'); // the file did not exist
  });

  it('one AbortSignal shared by 16 waiters aborts them all, with no listener-leak warning', async () => {
    const file = path.join(dir, 'shared-signal.lock');
    const holder = await lock(file, { removeOnRelease: false });
    const warnings: string[] = [];
    const onWarning = (warning: Error): void => {
      warnings.push(warning.name);
    };
    process.on('warning', onWarning);
    try {
      const controller = new AbortController();
      const waits = Array.from({ length: 16 }, () =>
        lock(file, { signal: controller.signal, removeOnRelease: false }).then(
          () => 'locked',
          (error: { code?: string }) => error.code,
        ),
      );
      await sleep(50);
      controller.abort('enough');
      expect(await Promise.all(waits)).toEqual(Array(16).fill('ABORT_ERR'));
      await sleep(10); // warnings are emitted on the next tick
      expect(warnings).not.toContain('MaxListenersExceededWarning');
    } finally {
      process.off('warning', onWarning);
      holder.releaseSync();
    }
  });

  it('a lock granted in the race with a timeout is released, never leaked', async () => {
    const file = path.join(dir, 'race.lock');
    const baseline = await resources();
    let won = 0;
    for (let i = 0; i < 30; i++) {
      const holder = await lock(file, { removeOnRelease: false });
      const contender = lock(file, { timeout: 15, removeOnRelease: false });
      const released = sleep(15).then(() => holder.releaseSync()); // release right at the deadline
      const handle = await contender.catch(() => null);
      await released;
      if (handle) {
        won++;
        handle.releaseSync();
      }
      // Either way, nobody holds it now.
      const check = tryLockSync(file, { removeOnRelease: false });
      expect(check).not.toBeNull();
      check?.releaseSync();
    }
    expect(won).toBeLessThanOrEqual(30);
    await expectBackTo(baseline);
  });
});

describe('waiting never occupies the libuv threadpool', () => {
  it('16 pending waiters, and fs.promises.readFile still completes promptly', async () => {
    expect(Number(process.env.UV_THREADPOOL_SIZE ?? 4)).toBeLessThan(16);
    const file = path.join(dir, 'pool.lock');
    const holder = await holdInChild(file);
    const baseline = await resources();
    const controller = new AbortController();
    const waiters = Array.from({ length: 16 }, () => lock(file, { signal: controller.signal }).catch((e) => e));
    await sleep(100);
    expect(native.stats()[1]).toBe(16);
    const started = performance.now();
    // Several reads: with waits parked on pool threads these would never run.
    await Promise.all(Array.from({ length: 8 }, () => readFile(os.devNull)));
    await readFile(__filename);
    expect(performance.now() - started).toBeLessThan(1_000);
    controller.abort();
    for (const result of await Promise.all(waiters)) expect(result).toBeInstanceOf(AbortError);
    await expectBackTo(baseline);
    await holder.kill();
  });
});

describe('lockSync and tryLock', () => {
  it.each(['flock', 'posix'] as const)('%s: lockSync honours its timeout', async (kind) => {
    const file = path.join(dir, `sync-${kind}.lock`);
    const holder = await holdInChild(file, { kind, owner: 'sync holder' });
    const baseline = await resources();
    const started = performance.now();
    let error: unknown;
    try {
      lockSync(file, { kind, timeout: 250 });
    } catch (e) {
      error = e;
    }
    const elapsed = performance.now() - started;
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(elapsed).toBeGreaterThanOrEqual(245);
    expect(elapsed).toBeLessThan(250 + 700);
    expect((error as LockTimeoutError).message).toContain(String(holder.pid));
    await expectBackTo(baseline);
    await holder.kill();
    const handle = lockSync(file, { kind, timeout: 5_000 });
    handle.releaseSync();
  });

  it('lockSync on a lock this thread holds fails fast instead of deadlocking', async () => {
    const file = path.join(dir, 'self.lock');
    const handle = await lock(file);
    expect(() => lockSync(file)).toThrow(expect.objectContaining({ code: 'EDEADLK' }));
    handle.releaseSync();
  });

  it('tryLock resolves null only when busy; other failures reject', async () => {
    const file = path.join(dir, 'busy.lock');
    const holder = await holdInChild(file);
    expect(await tryLock(file)).toBeNull();
    expect(tryLockSync(file)).toBeNull();
    await holder.kill();
    await expect(tryLock(path.join(dir, 'missing', 'x.lock'))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(() => tryLockSync(dir)).toThrow(expect.objectContaining({ code: 'EISDIR' }));
  });
});

describe('error shapes', () => {
  it('LockTimeoutError: code ELOCKED, names path, wait and the holder pid and label', async () => {
    const file = path.join(dir, 'shape.lock');
    const holder = await holdInChild(file, { owner: 'nightly backup' });
    const error = (await lock(file, { timeout: 100 }).catch((e: unknown) => e)) as LockTimeoutError;
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error.name).toBe('LockTimeoutError');
    expect(error.code).toBe(ELOCKED);
    expect(error.code).toBe('ELOCKED');
    expect(error.path).toBe(file);
    expect(error.waitedMs).toBeGreaterThanOrEqual(95);
    expect(error.message).toContain(file);
    expect(error.message).toMatch(/\b1\d\d ms\b/);
    expect(error.message).toContain(String(holder.pid));
    expect(error.message).toContain('nightly backup');
    await holder.kill();
  });

  it('system errors keep code, errno, syscall and path', async () => {
    const file = path.join(dir, 'no-such-dir', 'x.lock');
    const error = (await lock(file).catch((e: unknown) => e)) as NodeJS.ErrnoException;
    expect(error).toBeInstanceOf(Error);
    expect(error.code).toBe('ENOENT');
    expect(error.errno).toBe(-os.constants.errno.ENOENT);
    expect(error.syscall).toBe('open');
    expect(error.path).toBe(file);
    expect(error.message).toContain(file);
    expect(error.message).toMatch(/does not create directories/);
  });
});
