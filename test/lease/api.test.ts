// The Lease API in one process: tokens, the signal, assertCurrent(), fenced
// writes and their queue, release during a write, the files a lease refuses,
// a file replaced under its holder, bad input, and what inspection shows.
import { execFile } from 'node:child_process';
import { readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inspect, LeaseStaleError, lease, sweep, tryLock } from '../../src/index.js';
import { FENCE_BYTE, formatSlot, MAX_TOKEN, SLOT_OFFSET } from '../../src/lock/lease-layout.js';
import { fdCount, holdInChild, root, sleep, tempDir, threadCount } from '../helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kl-lease-api-'));
});
afterEach(() => cleanup());

/** A promise and the function that resolves it. */
function gate(): { promise: Promise<void>; open: () => void } {
  let open!: () => void;
  const promise = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}

function until(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      if (condition()) resolve();
      else if (performance.now() > deadline) reject(new Error('condition not met in time'));
      else setTimeout(tick, 5);
    };
    tick();
  });
}

describe('tokens, signal and assertCurrent', () => {
  it('hands out bigint tokens that go up by one per grant, and records the grant', async () => {
    const file = path.join(dir, 'a.lock');
    const first = await lease(file, { owner: 'first', takeoverAfter: 1234.2 });
    expect(first.token).toBe(1n);
    expect(first.owner).toBe('first');
    expect(first.takeoverAfter).toBe(1235);
    expect(first.superseded).toBeNull();
    expect(first.path).toBe(file);
    expect(Math.abs(first.acquiredAtMs - Date.now())).toBeLessThan(5_000);
    expect(first.isCurrent()).toBe(true);
    first.assertCurrent();
    await first.release();
    const second = await lease(file);
    expect(second.token).toBe(2n);
    expect(second.takeoverAfter).toBe(Number.POSITIVE_INFINITY);
    await second.release();
    // The file: a record the holder can be named from, then the token slot.
    const bytes = readFileSync(file);
    expect(bytes.length).toBe(4096 + 128);
    expect(JSON.parse(bytes.subarray(0, 4096).toString())).toMatchObject({ format: 'kernel-lock/1', pid: process.pid });
    expect(bytes.subarray(4096).toString()).toMatch(/^kernel-lock-lease\/1 token=2 granted=\d+ takeover-after=inf /);
  });

  it('release aborts the signal and makes the lease stale', async () => {
    const file = path.join(dir, 'release.lock');
    const held = await lease(file);
    expect(held.signal.aborted).toBe(false);
    await held.release();
    expect(held.released).toBe(true);
    expect(held.signal.aborted).toBe(true);
    expect(held.signal.reason).toBeInstanceOf(LeaseStaleError);
    expect(held.signal.reason).toMatchObject({ code: 'ELEASESTALE', reason: 'released', token: 1n });
    expect(() => held.assertCurrent()).toThrow(LeaseStaleError);
    await expect(held.write(() => 1)).rejects.toMatchObject({ reason: 'released' });
    expect(() => held.writeSync(() => 1)).toThrow(/released/);
    await held.release(); // idempotent
  });

  it('a superseded holder: signal fired by the takeover, assertCurrent and fenced writes refused', async () => {
    const file = path.join(dir, 'superseded.lock');
    const old = await lease(file, { takeoverAfter: 50 });
    let notified = 0;
    old.signal.addEventListener('abort', () => notified++);
    const successor = await lease(file, { takeoverAfter: 60_000, timeout: 10_000 });
    expect(successor.token).toBe(2n);
    expect(successor.superseded).toBe(1n);
    // The old holder did nothing: the kernel's notice of the slot write woke it.
    await until(() => old.signal.aborted);
    expect(notified).toBe(1);
    expect(old.signal.reason).toMatchObject({ reason: 'superseded', token: 1n, currentToken: 2n });
    expect(() => old.assertCurrent()).toThrow(/lease 1 is stale \(superseded by lease 2\)/);
    expect(old.isCurrent()).toBe(false);
    let ran = false;
    await expect(
      old.write(() => {
        ran = true;
      }),
    ).rejects.toMatchObject({ code: 'ELEASESTALE', reason: 'superseded' });
    expect(() =>
      old.writeSync(() => {
        ran = true;
      }),
    ).toThrow(LeaseStaleError);
    expect(ran).toBe(false);
    expect(await successor.write(() => 'ok')).toBe('ok');
    // Still held (its descriptor open) until released: inspection lists it.
    const seen = await inspect(file);
    expect(seen.lease?.current).toMatchObject({ token: '2', pid: process.pid });
    expect(seen.lease?.superseded).toEqual([expect.objectContaining({ token: '1', pid: process.pid, alive: true })]);
    await old.release();
    expect((await inspect(file)).lease?.superseded).toEqual([]);
    await successor.release();
  });

  it('assertCurrent() sees a supersession at once, before any notice arrives', async () => {
    const file = path.join(dir, 'at-once.lock');
    const old = await lease(file, { takeoverAfter: 0 });
    const successor = await lease(file);
    // Same tick as the takeover: the notice cannot have been delivered yet.
    expect(old.signal.aborted).toBe(false);
    expect(() => old.assertCurrent()).toThrow(LeaseStaleError);
    expect(old.signal.aborted).toBe(true);
    old.releaseSync();
    successor.releaseSync();
  });
});

describe('fenced writes', () => {
  it('a takeover waits for a fenced write in progress; the write, begun while current, completes', async () => {
    const file = path.join(dir, 'fence.lock');
    const old = await lease(file, { takeoverAfter: 0 });
    const inWrite = gate();
    const finish = gate();
    const writing = old.write(async () => {
      inWrite.open();
      await finish.promise;
      return 'written';
    });
    await inWrite.promise;
    let granted = false;
    const successor = lease(file, { timeout: 10_000 }).then((l) => {
      granted = true;
      return l;
    });
    await sleep(300);
    expect(granted).toBe(false); // the takeover needs the fence, which the write holds
    finish.open();
    expect(await writing).toBe('written');
    const next = await successor;
    expect(next.superseded).toBe(1n);
    await expect(old.write(() => 1)).rejects.toMatchObject({ reason: 'superseded' });
    old.releaseSync();
    next.releaseSync();
  });

  it("one lease's writes take turns; a nested write runs inside the outer one; writeSync refuses to overlap", async () => {
    const file = path.join(dir, 'queue.lock');
    const held = await lease(file);
    const order: string[] = [];
    const first = gate();
    const a = held.write(async () => {
      order.push('a start');
      await first.promise;
      const inner = await held.write(() => 'nested');
      order.push(`a ${inner} ${held.writeSync(() => 'sync-nested')}`);
    });
    const b = held.write(() => {
      order.push('b');
    });
    await sleep(50);
    expect(order).toEqual(['a start']);
    expect(() => held.writeSync(() => 1)).toThrow(/while a write\(\) of the same lease is queued or running/);
    first.open();
    await Promise.all([a, b]);
    expect(order).toEqual(['a start', 'a nested sync-nested', 'b']);
    expect(held.writeSync(() => 7)).toBe(7);
    await held.release();
  });

  it('a failing fn drops the fence; writeSync refuses a promise-returning fn', async () => {
    const file = path.join(dir, 'throw.lock');
    const held = await lease(file);
    await expect(
      held.write(() => {
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(() => held.writeSync(() => Promise.resolve(1))).toThrow(/Use write\(\)/);
    // Held, and not supersedable (its takeoverAfter is Infinity), whatever the waiter's own takeoverAfter.
    await expect(lease(file, { takeoverAfter: 0, timeout: 0 })).rejects.toMatchObject({ code: 'ELOCKED' });
    expect(await held.write(() => 'fence free')).toBe('fence free');
    await held.release();
  });

  it('waits for a fence held elsewhere: timeout and abort for write(), timeout for writeSync()', async () => {
    const file = path.join(dir, 'busy-fence.lock');
    const held = await lease(file);
    // Another process holds the fence byte (as a holder hung inside write() would).
    const hung = await holdInChild(file, {
      kind: 'ofd',
      range: { start: FENCE_BYTE, length: 1 },
      removeOnRelease: false,
    });
    let started = performance.now();
    await expect(held.write(() => 1, { timeout: 150 })).rejects.toMatchObject({ code: 'ELOCKED' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    const controller = new AbortController();
    const aborted = held.write(() => 1, { signal: controller.signal });
    await sleep(20);
    controller.abort();
    await expect(aborted).rejects.toMatchObject({ name: 'AbortError' });
    started = performance.now();
    expect(() => held.writeSync(() => 1, { timeout: 150 })).toThrow(/busy after/);
    expect(performance.now() - started).toBeGreaterThanOrEqual(140);
    const waiting = held.write(() => 'after');
    await hung.kill();
    expect(await waiting).toBe('after');
    await held.release();
  });

  it('writeSync() fails fast (EDEADLK) when this thread holds the fence across an await', async () => {
    const file = path.join(dir, 'deadlock.lock');
    const old = await lease(file, { takeoverAfter: 0 });
    const current = await lease(file); // supersedes `old`; no event-loop turn yet, so `old` does not know
    const finish = gate();
    const writing = current.write(() => finish.promise);
    for (let i = 0; i < 5; i++) await Promise.resolve(); // the write takes the fence; still no I/O turn
    expect(() => old.writeSync(() => 1)).toThrow(/EDEADLK/);
    finish.open();
    await writing;
    expect(() => old.writeSync(() => 1)).toThrow(LeaseStaleError);
    old.releaseSync();
    current.releaseSync();
  });

  it('release during a fenced write keeps the lease until the write finishes', async () => {
    const file = path.join(dir, 'release-in-write.lock');
    const held = await lease(file);
    const finish = gate();
    const writing = held.write(() => finish.promise);
    await sleep(20);
    const releasing = held.release();
    expect(held.signal.aborted).toBe(true);
    await expect(lease(file, { timeout: 0 })).rejects.toMatchObject({ code: 'ELOCKED' });
    finish.open();
    await writing;
    await releasing;
    const next = await lease(file, { timeout: 0 });
    expect(next.token).toBe(2n);
    next.releaseSync();
  });
});

describe('the lock file', () => {
  it("refuses a file that holds someone else's data, touching nothing", async () => {
    const file = path.join(dir, 'transcript.jsonl');
    const data = '{"role":"user","content":"hello"}\n{"role":"assistant","content":"hi"}\n';
    writeFileSync(file, data);
    const before = fdCount();
    await expect(lease(file)).rejects.toMatchObject({ code: 'ERR_KERNEL_LOCK_NOT_A_LOCK_FILE', path: file });
    await expect(lease(file)).rejects.toThrow(/Lease a file of its own, e\.g\. .*transcript\.jsonl\.lock/);
    expect(readFileSync(file, 'utf8')).toBe(data);
    expect(fdCount()).toBe(before);
    const big = path.join(dir, 'big.bin');
    writeFileSync(big, Buffer.alloc(10_000, 7));
    await expect(lease(big)).rejects.toMatchObject({ code: 'ERR_KERNEL_LOCK_NOT_A_LOCK_FILE' });
    expect(statSync(big).size).toBe(10_000);
  });

  it('takes over a plain lock file and a legacy marker (kernel-lock records and the runtime marker are ours)', async () => {
    const plain = path.join(dir, 'plain.lock');
    (await tryLock(plain, { removeOnRelease: false }))!.releaseSync();
    const onPlain = await lease(plain);
    expect(onPlain.token).toBe(1n);
    onPlain.releaseSync();
    const legacy = path.join(dir, 'legacy.jsonl.lock');
    writeFileSync(legacy, JSON.stringify({ pid: 4687, createdAt: '2026-04-25T12:00:00.000Z', starttime: 99 }, null, 2));
    const onLegacy = await lease(legacy);
    expect(onLegacy.token).toBe(1n);
    onLegacy.releaseSync();
  });

  it('fails closed on a damaged token slot and on an exhausted one', async () => {
    const damaged = path.join(dir, 'damaged.lock');
    (await lease(damaged)).releaseSync();
    const bytes = readFileSync(damaged);
    bytes.write('7', SLOT_OFFSET + 'kernel-lock-lease/1 token='.length); // the check no longer matches
    writeFileSync(damaged, bytes);
    await expect(lease(damaged)).rejects.toMatchObject({ code: 'ERR_KERNEL_LOCK_LEASE_DAMAGED' });
    expect(readFileSync(damaged).equals(bytes)).toBe(true);

    const full = path.join(dir, 'full.lock');
    (await lease(full)).releaseSync();
    const last = readFileSync(full);
    formatSlot({ token: MAX_TOKEN, grantedAtMs: 1, takeoverAfterMs: 0 }).copy(last, SLOT_OFFSET);
    writeFileSync(full, last);
    await expect(lease(full)).rejects.toThrow(RangeError);
  });

  it('a file removed under its holder makes the lease stale (its token fences nothing any more)', async () => {
    const file = path.join(dir, 'removed.lock');
    const held = await lease(file);
    rmSync(file);
    await until(() => held.signal.aborted);
    expect(held.signal.reason).toMatchObject({ reason: 'replaced' });
    expect(() => held.assertCurrent()).toThrow(/removed or replaced/);
    await expect(held.write(() => 1)).rejects.toMatchObject({ reason: 'replaced' });
    const fresh = await lease(file, { timeout: 0 });
    expect(fresh.token).toBe(1n); // a new file starts over: never remove a lease file
    fresh.releaseSync();
    held.releaseSync();
  });

  it('sweep keeps a free lease file: its token must outlive every holder', async () => {
    const file = path.join(dir, 'kept.lock');
    (await lease(file)).releaseSync();
    const result = await sweep(dir);
    expect(result.removed).toEqual([]);
    expect(result.kept).toEqual([expect.objectContaining({ path: file, reason: 'lease' })]);
    const next = await lease(file);
    expect(next.token).toBe(2n);
    next.releaseSync();
  });
});

describe('waiting and bad input', () => {
  it('a timeout names the holder and its lease; an abort ends the wait; nothing leaks', async () => {
    const file = path.join(dir, 'busy.lock');
    const held = await lease(file, { owner: 'the holder', takeoverAfter: 3_600_000 });
    const fds = fdCount();
    const threads = threadCount();
    const error = (await lease(file, { timeout: 300 }).catch((e: unknown) => e)) as Error & { code: string };
    expect(error.code).toBe('ELOCKED');
    expect(error.message).toMatch(/lease token 1, may be superseded in 59m\d\ds/);
    expect(error.message).toContain('owner "the holder"');
    const controller = new AbortController();
    const waiting = lease(file, { signal: controller.signal });
    await sleep(50);
    controller.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    await expect(lease(file, { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
    await expect(lease(file, { timeout: 0 })).rejects.toMatchObject({ code: 'ELOCKED' });
    await sleep(50);
    expect(fdCount()).toBe(fds);
    expect(threadCount()).toBe(threads);
    await held.release();
  });

  it('rejects bad options before touching the disk', async () => {
    const file = path.join(dir, 'never.lock');
    const cases: [unknown, RegExp][] = [
      [{ takeoverAfter: -1 }, /takeoverAfter must be >= 0/],
      [{ takeoverAfter: '5' }, /takeoverAfter must be a number/],
      [{ takeoverAfter: Number.NaN }, /takeoverAfter must be >= 0/],
      [{ timeout: -5 }, /timeout must be >= 0/],
      [{ owner: 5 }, /owner must be a string/],
      [{ signal: {} }, /signal must be an AbortSignal/],
      [{ removeOnRelease: true }, /unknown option "removeOnRelease"/],
      [null, /options must be an object/],
    ];
    for (const [options, message] of cases) {
      await expect(lease(file, options as never)).rejects.toThrow(message);
    }
    await expect(lease('')).rejects.toThrow(TypeError);
    expect(() => statSync(file)).toThrow(/ENOENT/);
    const held = await lease(file);
    await expect(held.write('nope' as never)).rejects.toThrow(/needs a function/);
    await expect(held.write(() => 1, { timeout: -1 })).rejects.toThrow(RangeError);
    expect(() => held.writeSync(() => 1, { signal: AbortSignal.abort() } as never)).toThrow(/cannot be aborted/);
    await held.release();
  });

  it('`await using` releases at the end of the block', async () => {
    const file = path.join(dir, 'using.lock');
    {
      await using held = await lease(file);
      expect(held.isCurrent()).toBe(true);
    }
    const next = await lease(file, { timeout: 0 });
    expect(next.token).toBe(2n);
    next.releaseSync();
  });
});

describe('kernel-lock status', () => {
  it('shows the token, the holder, and superseded holders still alive', async () => {
    const file = path.join(dir, 'status.lock');
    const old = await lease(file, { takeoverAfter: 0 });
    const current = await lease(file, { owner: 'successor' });
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, [path.join(root, 'dist', 'cli.js'), 'status', dir], (error, out) => {
        if (error !== null && (error as { code?: number }).code !== 1) reject(error);
        else resolve(out);
      });
    });
    const [header, row, extra] = stdout.split('\n');
    expect(header).toMatch(/^STATE\s+PID\s+ALIVE\s+HELD\s+OWNER\s+TOKEN\s+COMMAND\s+PATH$/);
    expect(row).toMatch(
      new RegExp(`^held\\s+${process.pid}( \\+\\d+)?\\s+yes\\s+\\S+\\s+successor\\s+2 \\+1 superseded\\s`),
    );
    expect(extra).toContain(`superseded, still alive: token 1 (pid ${process.pid}`);
    old.releaseSync();
    current.releaseSync();
  });
});
