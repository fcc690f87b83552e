import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LockHandle, LockTimeoutError, lock, lockSync, parseRecord, tryLock, withLock } from '../../src/index.js';
import { native } from '../../src/native/binding.js';
import { holdInChild, tempDir } from '../helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

describe('lock basics', () => {
  it('acquires, writes an owner record, and keeps the file on release (the default)', async () => {
    const file = path.join(dir, 'default.lock');
    const handle = await lock(file, { owner: 'basics' });
    expect(handle.recordSkipped).toBeNull();
    expect(parseRecord(readFileSync(file))).toMatchObject({ pid: process.pid, owner: 'basics' });
    await handle.release();
    // Kept: a flock(1) or Python peer that opened the file before a release
    // would otherwise lock an unlinked inode (test/lock/interop.test.ts).
    expect(existsSync(file)).toBe(true);
  });

  it('acquires, writes an owner record, and removes the file on release with removeOnRelease', async () => {
    const file = path.join(dir, 'a.lock');
    const handle = await lock(file, { owner: 'basics', removeOnRelease: true });
    expect(handle).toBeInstanceOf(LockHandle);
    expect(handle.kind).toBe('flock');
    expect(handle.mode).toBe('exclusive');
    expect(handle.verify()).toBe(true);
    const record = parseRecord(readFileSync(file));
    expect(record).toMatchObject({ pid: process.pid, owner: 'basics', kind: 'flock', mode: 'exclusive' });
    await handle.release();
    expect(handle.released).toBe(true);
    expect(existsSync(file)).toBe(false);
    await handle.release(); // idempotent
  });

  it("an uncontended acquisition's acquiredAt is its owner record's createdAt (one clock reading)", async () => {
    // Two clock readings (record before the attempt, handle after it) differ
    // whenever a millisecond boundary falls inside the attempt: in about 1 %
    // of cycles, so many times in 1,500.
    const file = path.join(dir, 'clock.lock');
    for (let i = 0; i < 1500; i++) {
      for (const take of [() => lock(file), () => lockSync(file), async () => (await tryLock(file))!]) {
        const handle = await take();
        const createdAt = Date.parse(parseRecord(readFileSync(file))!.createdAt!);
        handle.releaseSync();
        if (createdAt !== handle.acquiredAtMs) expect({ i, createdAt }).toEqual({ i, createdAt: handle.acquiredAtMs });
      }
    }
  });

  it('writes its own record when the addon holds another one (a second copy of the library in the thread)', async () => {
    // The addon keeps the latest record so that an acquisition need not pass
    // it (Flag.storedRecord); another copy of the JavaScript sharing the
    // addon may replace it. A frozen clock keeps this copy's record unchanged,
    // so the acquisition relies on the stored one.
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.parse('2026-01-02T03:04:05.006Z'));
      const file = path.join(dir, 'stored.lock');
      (await lock(file, { owner: 'this copy' })).releaseSync();
      native.setRecord(Buffer.from('{"format":"kernel-lock/1","pid":1,"owner":"another copy"}\n'));
      const handle = await lock(file, { owner: 'this copy' });
      expect(parseRecord(readFileSync(file))).toMatchObject({ pid: process.pid, owner: 'this copy' });
      handle.releaseSync();
    } finally {
      vi.useRealTimers();
    }
  });

  it('keeps the file with removeOnRelease: false', async () => {
    const file = path.join(dir, 'keep.lock');
    const handle = lockSync(file, { removeOnRelease: false });
    handle.releaseSync();
    expect(existsSync(file)).toBe(true);
  });

  it('excludes a second in-process acquisition, and tryLock returns null', async () => {
    const file = path.join(dir, 'b.lock');
    const first = await lock(file);
    expect(await tryLock(file)).toBeNull();
    await expect(lock(file, { timeout: 50 })).rejects.toBeInstanceOf(LockTimeoutError);
    await first.release();
    const second = await tryLock(file);
    expect(second).not.toBeNull();
    await second?.release();
  });

  it('withLock releases when fn throws', async () => {
    const file = path.join(dir, 'c.lock');
    await expect(
      withLock(file, () => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    const again = await tryLock(file);
    expect(again).not.toBeNull();
    again?.releaseSync();
  });

  it('a waiter gets the lock when the holder process is SIGKILLed', async () => {
    const file = path.join(dir, 'kill.lock');
    const holder = await holdInChild(file, { owner: 'victim' });
    const waiting = lock(file, { timeout: 20_000 });
    await holder.kill('SIGKILL');
    const handle = await waiting;
    expect(handle.verify()).toBe(true);
    await handle.release();
  });
});
