// The six correctness rules of the core (issue 2), each with a test that
// fails when the rule is broken. Real processes and real kernel locks.
import { spawn } from 'node:child_process';
import { existsSync, fstatSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { LockTimeoutError, lock, lockSync, parseRecord, tryLock } from '../../src/index.js';
import { readRecord, readRecordSync } from '../../src/lock/owner-record.js';
import {
  fixture,
  holdInChild,
  lineFrom,
  probeInChild,
  releaseInChild,
  runFixture,
  sleep,
  tempDir,
} from '../helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

const inodeOf = (fd: number): number => fstatSync(fd).ino;

describe('rule 1: verified acquisition', () => {
  it('a waiter woken on an unlinked file retries on the file the path now names', async () => {
    const file = path.join(dir, 'v.lock');
    const holder = await holdInChild(file, { removeOnRelease: true }); // unlinks while holding
    const waiting = lock(file, { timeout: 10_000 });
    await sleep(100); // the waiter has opened the old inode and sleeps in the kernel
    await releaseInChild(holder);
    const handle = await waiting;
    // Without verification the waiter would hold the unlinked inode: the
    // path would be missing or name another file, and a third process
    // could lock the path at the same time.
    expect(existsSync(file)).toBe(true);
    expect(statSync(file).ino).toBe(inodeOf(handle.fd));
    expect(handle.verify()).toBe(true);
    expect(await probeInChild(file)).toBe('busy');
    handle.releaseSync();
    await holder.kill();
  });

  it('a waiter woken on a replaced file retries on the replacement', async () => {
    const file = path.join(dir, 'r.lock');
    const holder = await holdInChild(file, { removeOnRelease: false });
    const waiting = lock(file, { timeout: 10_000 });
    await sleep(100);
    const replacement = path.join(dir, 'replacement');
    writeFileSync(replacement, '');
    renameSync(replacement, file); // the path now names another inode
    const replacementIno = statSync(file).ino;
    await releaseInChild(holder);
    const handle = await waiting;
    expect(inodeOf(handle.fd)).toBe(replacementIno);
    expect(handle.verify()).toBe(true);
    handle.releaseSync();
    await holder.kill();
  });

  it('verify() turns false when the file is removed behind the holder', async () => {
    const file = path.join(dir, 'gone.lock');
    const handle = await lock(file);
    renameSync(file, path.join(dir, 'moved'));
    expect(handle.verify()).toBe(false);
    handle.releaseSync();
    expect(handle.verify()).toBe(false);
  });
});

describe('rule 2: removeOnRelease', () => {
  it('only the last shared holder removes the file', async () => {
    const file = path.join(dir, 'shared.lock');
    const other = await holdInChild(file, { mode: 'shared', removeOnRelease: true });
    const mine = await lock(file, { mode: 'shared', removeOnRelease: true });
    await mine.release();
    // The child still holds it: the file must stay, or a newcomer would
    // create a fresh file and "share" nothing with the child.
    expect(existsSync(file)).toBe(true);
    await releaseInChild(other);
    expect(existsSync(file)).toBe(false);
    await other.kill();
  });

  it.each(['ofd', 'posix'] as const)('%s: only the last shared holder removes the file', async (kind) => {
    const file = path.join(dir, `shared-${kind}.lock`);
    const other = await holdInChild(file, { mode: 'shared', kind, removeOnRelease: true });
    const mine = await lock(file, { mode: 'shared', kind, removeOnRelease: true });
    await mine.release();
    expect(existsSync(file)).toBe(true);
    await releaseInChild(other);
    expect(existsSync(file)).toBe(false);
    await other.kill();
  });

  it('a range holder does not remove the file while another process holds another range', async () => {
    const file = path.join(dir, 'range.lock');
    const other = await holdInChild(file, { kind: 'ofd', range: { start: 0, length: 10 }, removeOnRelease: true });
    const mine = await lock(file, { kind: 'ofd', range: { start: 10, length: 10 }, removeOnRelease: true });
    mine.releaseSync();
    expect(existsSync(file)).toBe(true);
    await other.kill();
  });

  it('never removes a path that no longer names the locked file', async () => {
    const file = path.join(dir, 'swap.lock');
    const handle = await lock(file, { removeOnRelease: true });
    const replacement = path.join(dir, 'replacement');
    writeFileSync(replacement, 'not ours');
    renameSync(replacement, file);
    handle.releaseSync();
    expect(readFileSync(file, 'utf8')).toBe('not ours');
  });

  it('the file is removed before the lock is dropped (a waiter never locks a doomed file)', async () => {
    // A waiter that wakes re-verifies; if the releaser unlinked after
    // closing, the waiter could verify the old file and then lose it. Run
    // many hand-offs between two processes and check the winner's file.
    const file = path.join(dir, 'order.lock');
    for (let i = 0; i < 10; i++) {
      const holder = await holdInChild(file, { removeOnRelease: true });
      const waiting = lock(file, { timeout: 10_000, removeOnRelease: true });
      await sleep(20);
      await releaseInChild(holder);
      const handle = await waiting;
      expect(statSync(file).ino).toBe(inodeOf(handle.fd));
      handle.releaseSync();
      await holder.kill();
    }
  });
});

describe('rule 3: owner record', () => {
  it('an exclusive holder writes every field', async () => {
    const file = path.join(dir, 'rec.lock');
    const handle = await lock(file, { owner: 'rule-3', kind: 'ofd' });
    const text = readFileSync(file, 'utf8');
    expect(text.trimEnd().split('\n')).toHaveLength(1);
    const record = JSON.parse(text) as Record<string, unknown>;
    expect(record).toMatchObject({
      format: 'kernel-lock/1',
      pid: process.pid,
      owner: 'rule-3',
      kind: 'ofd',
      mode: 'exclusive',
    });
    expect(Number.isSafeInteger(record.starttime)).toBe(true);
    const stat = readFileSync('/proc/self/stat', 'latin1');
    expect(record.starttime).toBe(Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]));
    expect(new Date(record.createdAt as string).toISOString()).toBe(record.createdAt);
    expect(record.hostname).toBeTypeOf('string');
    expect(record.bootId).toMatch(/^[0-9a-f-]{36}$/);
    expect(record.pidNamespace).toMatch(/^pid:\[\d+\]$/);
    expect(Array.isArray(record.argv)).toBe(true);
    handle.releaseSync();
  });

  it('a shorter record after a longer one still parses, and the file is not truncated', async () => {
    const file = path.join(dir, 'inplace.lock');
    const long = await lock(file, { owner: 'x'.repeat(200), removeOnRelease: false });
    long.releaseSync();
    const longSize = statSync(file).size;
    const short = await lock(file, { owner: 'y', removeOnRelease: false });
    // Overwritten in place and blanked with spaces: same size (an ftruncate
    // would shrink it), and still exactly one JSON object.
    expect(statSync(file).size).toBe(longSize);
    expect(parseRecord(readFileSync(file))).toMatchObject({ owner: 'y', pid: process.pid });
    expect(JSON.parse(readFileSync(file, 'utf8')).owner).toBe('y');
    short.releaseSync();
    // The blanked record is recognised as ours again (native/addon_lock.cc
    // remembers it as written, padding included) and overwritten in turn.
    const again = await lock(file, { owner: 'z', removeOnRelease: false });
    expect(again.recordSkipped).toBeNull();
    expect(statSync(file).size).toBe(longSize);
    expect(parseRecord(readFileSync(file))).toMatchObject({ owner: 'z', pid: process.pid });
    again.releaseSync();
  });

  it('content that is not a record or marker is never rewritten, truncated or removed', async () => {
    const file = path.join(dir, 'huge.lock');
    const huge = `{"pid":1,"junk":"${'z'.repeat(20_000)}"}`;
    writeFileSync(file, huge);
    const handle = lockSync(file, { owner: 'after-huge', removeOnRelease: true });
    expect(handle.recordSkipped).toBe('foreign-content');
    expect(handle.recordError).toBeNull();
    handle.releaseSync();
    expect(readFileSync(file, 'utf8')).toBe(huge);
  });

  it('a legacy marker and a kernel-lock record are rewritten; an empty file gets a record', async () => {
    const legacy = path.join(dir, 'legacy-marker.lock');
    writeFileSync(legacy, JSON.stringify({ pid: 4687, createdAt: '2026-01-01T00:00:00.000Z', starttime: 1 }, null, 2));
    const empty = path.join(dir, 'empty.lock');
    writeFileSync(empty, '');
    for (const file of [legacy, empty, legacy]) {
      const handle = lockSync(file, { owner: 'mine' });
      expect(handle.recordSkipped).toBeNull();
      expect(parseRecord(readFileSync(file))).toMatchObject({ pid: process.pid, owner: 'mine' });
      handle.releaseSync();
    }
  });

  it('legacy markers still read; garbage and oversize files read as no record', async () => {
    const legacy = path.join(dir, 'legacy.lock');
    writeFileSync(legacy, JSON.stringify({ pid: 4687, createdAt: '2026-01-01T00:00:00.000Z', starttime: 123 }));
    expect(readRecordSync(legacy)).toEqual({ pid: 4687, createdAt: '2026-01-01T00:00:00.000Z', starttime: 123 });
    expect(await readRecord(legacy)).toMatchObject({ pid: 4687 });
    const garbage = path.join(dir, 'garbage.lock');
    writeFileSync(garbage, Buffer.from([0xff, 0x00, 0x7b, 0x22]));
    expect(readRecordSync(garbage)).toBeNull();
    const big = path.join(dir, 'big.lock');
    writeFileSync(big, `{"pid":7,"pad":"${' '.repeat(1 << 20)}"}`);
    // Bounded: only the first 4 KiB are read, which is not a whole object.
    expect(readRecordSync(big)).toBeNull();
    expect(parseRecord('[1,2]')).toBeNull();
    expect(parseRecord('{"pid":"12"}')).toEqual({});
  });

  it('a shared holder leaves the record alone; a long argv is bounded so the record fits', async () => {
    const file = path.join(dir, 'argv.lock');
    const longArgs = Array.from({ length: 16 }, (_, i) => `${i}-${'a'.repeat(300)}`);
    const report = await runFixture('core-probe.mjs', [file, JSON.stringify({ removeOnRelease: false }), ...longArgs]);
    expect(report.result).toBe('locked');
    const record = parseRecord(readFileSync(file));
    expect(record?.argv?.length).toBeGreaterThan(0);
    expect(readFileSync(file).length).toBeLessThan(4096);
    const shared = await lock(file, { mode: 'shared' });
    expect(parseRecord(readFileSync(file))?.pid).not.toBe(process.pid);
    shared.releaseSync();
  });
});

describe('rule 3: owner record after a wait', () => {
  it('records when the lock was granted, not when lock() was called', async () => {
    const file = path.join(dir, 'granted.lock');
    const holder = await holdInChild(file, { removeOnRelease: false });
    const called = Date.now();
    const waiting = lock(file, { removeOnRelease: false, owner: 'late' });
    await sleep(400);
    const killedAt = Date.now();
    await holder.kill('SIGKILL');
    const handle = await waiting;
    const record = parseRecord(readFileSync(file));
    expect(record).toMatchObject({ pid: process.pid, owner: 'late' });
    // createdAt feeds inspect()'s "held for": a call-time stamp would make a
    // fresh holder look 400 ms older than it is.
    expect(Date.parse(record!.createdAt!)).toBeGreaterThanOrEqual(killedAt);
    expect(killedAt - called).toBeGreaterThanOrEqual(390);
    await handle.release();
  });
});

describe('rule 3: owner record after a wait, every kind and both APIs', () => {
  // lockSync() and the posix waits format the record before they wait and
  // the native finish stamps createdAt at the grant: a record formatted
  // before the wait must not keep the call time.
  const cases = [
    ['flock', 'lockSync', Number.POSITIVE_INFINITY], // the thread blocks in the kernel itself
    ['flock', 'lockSync', 20_000], // a helper thread waits, interruptible at the deadline
    ['ofd', 'lockSync', Number.POSITIVE_INFINITY],
    ['posix', 'lockSync', Number.POSITIVE_INFINITY],
    ['posix', 'lockSync', 20_000],
    ['posix', 'lock', Number.POSITIVE_INFINITY],
  ] as const;
  it.each(cases)('%s %s (timeout %s): createdAt is the grant time, not the call time', async (kind, api, timeout) => {
    const file = path.join(dir, `granted-${kind}-${api}-${timeout}.lock`);
    const holder = await holdInChild(file, { kind }, 800); // exits (the kernel releases) 800 ms after locking
    const called = Date.now();
    const options = { kind, owner: 'late', timeout };
    const handle = api === 'lockSync' ? lockSync(file, options) : await lock(file, options);
    const returned = Date.now();
    const record = parseRecord(readFileSync(file));
    expect(record).toMatchObject({ pid: process.pid, owner: 'late', kind, mode: 'exclusive' });
    expect(record!.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    const createdAt = Date.parse(record!.createdAt!);
    expect(returned - called).toBeGreaterThanOrEqual(500); // it did wait
    // The holder released about 800 ms after it locked, so well after the
    // call; a call-time stamp would read `called`.
    expect(createdAt).toBeGreaterThanOrEqual(called + 400);
    expect(createdAt).toBeLessThanOrEqual(handle.acquiredAtMs);
    expect(handle.acquiredAtMs).toBeLessThanOrEqual(returned);
    handle.releaseSync();
    await holder.exited;
  });
});

describe('rule 4: close-on-exec', () => {
  it('a child spawned while holding does not keep the lock after the parent dies', async () => {
    const file = path.join(dir, 'exec.lock');
    const child = spawn(process.execPath, [fixture('core-spawner.mjs'), file], { stdio: ['pipe', 'pipe', 'pipe'] });
    const line = await lineFrom(child, 'locked');
    const grandchild = Number(line.split(' ')[2]);
    try {
      expect(await probeInChild(file)).toBe('busy');
      child.kill('SIGKILL');
      await new Promise((resolve) => child.once('exit', resolve));
      expect(() => process.kill(grandchild, 0)).not.toThrow(); // still alive
      const handle = await lock(file, { timeout: 5_000 });
      handle.releaseSync();
    } finally {
      try {
        process.kill(grandchild, 'SIGKILL');
      } catch {}
    }
  });
});

describe('rule 5: in-process semantics', () => {
  it.each(['flock', 'ofd'] as const)('%s: two acquisitions in one process exclude each other', async (kind) => {
    const file = path.join(dir, `in-${kind}.lock`);
    const first = await lock(file, { kind });
    expect(await tryLock(file, { kind })).toBeNull();
    const second = lock(file, { kind, timeout: 10_000 });
    let settled = false;
    void second.then(() => {
      settled = true;
    });
    await sleep(100);
    expect(settled).toBe(false);
    first.releaseSync();
    (await second).releaseSync();
  });

  it('posix: a second acquisition in the process waits its turn', async () => {
    const file = path.join(dir, 'in-posix.lock');
    const first = await lock(file, { kind: 'posix' });
    // The kernel would grant this at once (the process already owns the
    // lock); the library must make it wait instead.
    expect(await tryLock(file, { kind: 'posix' })).toBeNull();
    await expect(lock(file, { kind: 'posix', timeout: 100 })).rejects.toBeInstanceOf(LockTimeoutError);
    const controller = new AbortController();
    const aborted = lock(file, { kind: 'posix', signal: controller.signal });
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
    const second = lock(file, { kind: 'posix', timeout: 10_000 });
    let settled = false;
    void second.then(() => {
      settled = true;
    });
    await sleep(100);
    expect(settled).toBe(false);
    expect(await probeInChild(file, { kind: 'posix' })).toBe('busy');
    first.releaseSync();
    const handle = await second;
    expect(await probeInChild(file, { kind: 'posix' })).toBe('busy');
    handle.releaseSync();
    expect(await probeInChild(file, { kind: 'posix' })).toBe('locked');
  });

  it('posix: other descriptors of the file opening and closing do not drop our lock', async () => {
    const file = path.join(dir, 'close.lock');
    const held = await lock(file, { kind: 'posix', range: { start: 0, length: 10 }, owner: 'keeper' });
    // A timed-out attempt (its timeout message inspects the file) ...
    await expect(lock(file, { kind: 'posix', timeout: 30 })).rejects.toBeInstanceOf(LockTimeoutError);
    // ... a record read ...
    expect((await readRecord(file))?.owner).toBe('keeper');
    expect(readRecordSync(file)?.owner).toBe('keeper');
    // ... and an acquisition of another range, which queues behind ours
    // (posix acquisitions in one process take turns per file) and gives up.
    await expect(lock(file, { kind: 'posix', range: { start: 20, length: 10 }, timeout: 30 })).rejects.toBeInstanceOf(
      LockTimeoutError,
    );
    expect(await tryLock(file, { kind: 'posix', range: { start: 20, length: 10 } })).toBeNull();
    // Any close of another descriptor would have dropped the lock process-wide.
    expect(await probeInChild(file, { kind: 'posix', range: { start: 0, length: 10 } })).toBe('busy');
    held.releaseSync();
    expect(await probeInChild(file, { kind: 'posix', range: { start: 0, length: 10 } })).toBe('locked');
  });
});

describe('rule 6: a garbage-collected handle, registered for cleanup late', () => {
  // Handles are registered with the finalizer at the end of the loop turn
  // or once 64 wait, not when built: every forgotten one must still be.
  it('a burst of forgotten lockSync() handles, and one forgotten after a wait, are all closed', async () => {
    const report = await runFixture('core-gc-batch.mjs', [dir, '150'], { nodeArgs: ['--expose-gc'] });
    expect(report.busyBefore).toBe(150 + 1);
    expect(report.freeAfter).toBe(150 + 1);
    expect(report.leakWarnings).toBe(150 + 1);
  });

  it("does not depend on the global setTimeout (a test's fake timers replace it)", async () => {
    const report = await runFixture('core-gc-batch.mjs', [dir, '10', 'fake-timers'], { nodeArgs: ['--expose-gc'] });
    expect(report.busyBefore).toBe(10 + 1);
    expect(report.freeAfter).toBe(10 + 1);
    expect(report.leakWarnings).toBe(10 + 1);
  });
});

describe('rule 6: a garbage-collected handle', () => {
  it('is closed (lock released) with a warning', async () => {
    const file = path.join(dir, 'gc.lock');
    const report = await runFixture('core-gc.mjs', [file], { nodeArgs: ['--expose-gc'] });
    expect(report.busyBefore).toBe(true);
    expect(report.freeAfter).toBe(true);
    const warnings = report.warnings as { code: string; message: string }[];
    expect(warnings.map((w) => w.code)).toContain('KERNEL_LOCK_HANDLE_LEAKED');
    expect(warnings[0]?.message).toContain(file);
  });
});
