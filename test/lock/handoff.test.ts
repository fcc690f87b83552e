// The contended path of a whole acquisition (flock, ofd) as the waiter
// thread runs it (native/grant.h, native/async_waiter.h): the record is
// written at grant time before lock() resolves, N waiters of one process
// are served in the order the kernel queued them (also when the file is
// unlinked under them), a release keeps the file while another acquisition
// of the process waits for it, and every thread, descriptor and
// registration is gone afterwards.
import { readFileSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { type LockHandle, lock } from '../../src/index.js';
import { native } from '../../src/native/binding.js';
import { fdCount, holdInChild, releaseInChild, sleep, tempDir, threadCount, untilBlocked } from '../helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-handoff-'));
});
afterEach(() => cleanup());

async function resources(): Promise<{ fds: number; threads: number; stats: [number, number, number] }> {
  await readFile(__filename); // libuv's pool threads start lazily: not ours
  return { fds: fdCount(), threads: threadCount(), stats: native.stats() };
}

/** Threads of a finished wait are joined right after its result is delivered: allow a few loop turns. */
async function settled(
  baseline: Awaited<ReturnType<typeof resources>>,
): Promise<Awaited<ReturnType<typeof resources>>> {
  for (let i = 0; i < 100; i++) {
    const now = await resources();
    if (JSON.stringify(now) === JSON.stringify(baseline)) return now;
    await sleep(10);
  }
  return resources();
}

describe('the grant, on the waiter thread', () => {
  it.each(['flock', 'ofd'] as const)(
    '%s: the record is written at grant time, before lock() resolves',
    async (kind) => {
      const file = path.join(dir, `record-${kind}.lock`);
      const holder = await holdInChild(file, { kind });
      const waiting = lock(file, { kind, owner: 'the waiter' });
      await untilBlocked(1);
      await sleep(300); // lock() was called well before the release
      const releasedAt = Date.now();
      await releaseInChild(holder);
      const handle = await waiting;
      // Read synchronously right after the resolution: nothing ran in between.
      const record = JSON.parse(readFileSync(file, 'utf8'));
      expect(record.pid).toBe(process.pid);
      expect(record.owner).toBe('the waiter');
      expect(record.kind).toBe(kind);
      const createdAt = Date.parse(record.createdAt);
      expect(record.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      // The grant time, not the call time (300 ms before), to the clock's millisecond.
      expect(createdAt).toBeGreaterThanOrEqual(releasedAt - 5);
      expect(createdAt).toBeLessThanOrEqual(Date.now());
      expect(handle.recordError).toBeNull();
      handle.releaseSync();
      await holder.kill();
    },
  );

  it('a wait whose file is unlinked by its holder ends on the file the path names now', async () => {
    const file = path.join(dir, 'replaced.lock');
    const holder = await holdInChild(file, { removeOnRelease: true });
    const baseline = await resources();
    const waiting = lock(file);
    await untilBlocked(1);
    await releaseInChild(holder); // unlinks, then releases
    const handle = await waiting;
    expect(handle.verify()).toBe(true);
    expect(statSync(file).ino).toBe(statSync(`/proc/self/fd/${handle.fd}`).ino);
    expect(JSON.parse(readFileSync(file, 'utf8')).pid).toBe(process.pid);
    handle.releaseSync();
    expect(await settled(baseline)).toEqual(baseline);
    await holder.kill();
  });
});

describe('N waiters in one process', () => {
  it.each([
    ['keep-file', false],
    ['removeOnRelease, the holder unlinking under them', true],
  ] as const)(
    '%s: 64 waiters are served in the order they entered the kernel, and leave nothing behind',
    async (_name, removeOnRelease) => {
      const file = path.join(dir, `crowd-${removeOnRelease}.lock`);
      const holder = await holdInChild(file, { removeOnRelease });
      const baseline = await resources();
      const order: number[] = [];
      const all: Promise<void>[] = [];
      // 64: enough that waiters moving off an orphaned inode out of turn
      // (each closing it before holding the new file) show up every time.
      for (let i = 0; i < 64; i++) {
        all.push(
          lock(file, { removeOnRelease }).then((handle) => {
            order.push(i);
            handle.releaseSync();
          }),
        );
        // The next one starts once this one sleeps in the kernel: the
        // kernel's queue order is then the start order.
        await untilBlocked(i + 1);
      }
      await releaseInChild(holder);
      await Promise.all(all);
      expect(order).toEqual(Array.from({ length: 64 }, (_, i) => i));
      expect(await settled(baseline)).toEqual(baseline);
      await holder.kill();
    },
  );

  it('a release with removeOnRelease keeps the file while another acquisition of the process waits for it', async () => {
    const file = path.join(dir, 'pending.lock');
    const first = await lock(file, { removeOnRelease: true });
    const inode = statSync(file).ino;
    let second: LockHandle | undefined;
    const waiting = lock(file, { removeOnRelease: true }).then((handle) => {
      second = handle;
    });
    await untilBlocked(1);
    first.releaseSync();
    // Not unlinked: the waiter gets the very same file, without a reopen.
    expect(statSync(file).ino).toBe(inode);
    expect(native.stats()[2]).toBe(1); // one path waited for
    await waiting;
    expect(statSync(file).ino).toBe(inode);
    expect(native.stats()[2]).toBe(0);
    second?.releaseSync();
    // The last holder unlinks.
    expect(() => statSync(file)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
  });

  it('a cancelled wait stops counting as waiting: the holder then unlinks', async () => {
    const file = path.join(dir, 'cancelled.lock');
    const first = await lock(file, { removeOnRelease: true });
    const controller = new AbortController();
    const waiting = lock(file, { removeOnRelease: true, signal: controller.signal }).catch((e: unknown) => e);
    await untilBlocked(1);
    controller.abort();
    expect(await waiting).toMatchObject({ name: 'AbortError' });
    first.releaseSync();
    expect(() => statSync(file)).toThrow(expect.objectContaining({ code: 'ENOENT' }));
    expect(native.stats()[2]).toBe(0);
  });
});
