// kernel-lock/fs-safe against the published @openclaw/fs-safe, side by side
// in one process: the same export names, handle and manager shapes, the same
// validation errors (class and message), error codes and message heads, and
// payload rules. Every comparison runs the stock package too, so a drift in
// either shows up here.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as stock18 from 'fs-safe-0-18/file-lock';
import * as stock21 from 'fs-safe-0-21/file-lock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import * as ours from '../../../src/openclaw/fs-safe/index.js';
import { retryScheduleMs } from '../../../src/openclaw/fs-safe/index.js';
import { tempDir } from '../../helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kl-fs-safe-contract-'));
});
afterEach(() => cleanup());

const payload = () => ({ pid: process.pid, createdAt: new Date().toISOString() });
const stocks = [
  ['0.18.1', stock18],
  ['0.21.0', stock21],
] as const;

async function failure(run: () => unknown): Promise<{ name: string; message: string; code?: unknown }> {
  try {
    await run();
  } catch (error) {
    const e = error as Error & { code?: unknown };
    return { name: e.constructor.name, message: e.message, code: e.code };
  }
  throw new Error('expected a failure');
}

describe.each(stocks)('against @openclaw/fs-safe %s', (_version, stock) => {
  it('exports every runtime value of @openclaw/fs-safe/file-lock', () => {
    const names = Object.keys(stock).sort();
    expect(names).toEqual([
      'acquireFileLock',
      'acquireFileLockSync',
      'createFileLockManager',
      'drainFileLockManagerForTest',
      'resetFileLockManagerForTest',
      'withFileLock',
      'withFileLockSync',
    ]);
    for (const name of names) expect(typeof (ours as Record<string, unknown>)[name], name).toBe('function');
  });

  it('hands out handles, managers and held entries of the same shape', async () => {
    const target = path.join(dir, 'state.json');
    const theirs = await stock.acquireFileLock(target, { payload });
    const theirKeys = Reflect.ownKeys(theirs).map(String).sort();
    await theirs.release();
    const mine = await ours.acquireFileLock(target, { payload });
    expect(Reflect.ownKeys(mine).map(String).sort()).toEqual(theirKeys);
    expect(mine.lockPath).toBe(theirs.lockPath);
    expect(mine.normalizedTargetPath).toBe(theirs.normalizedTargetPath);
    await mine.release();

    const theirSync = stock.acquireFileLockSync(target, { payload });
    const theirSyncKeys = Reflect.ownKeys(theirSync).map(String).sort();
    theirSync.release();
    const mineSync = ours.acquireFileLockSync(target, { payload });
    expect(Reflect.ownKeys(mineSync).map(String).sort()).toEqual(theirSyncKeys);
    mineSync.release();

    const theirManager = stock.createFileLockManager('kl-shape');
    const myManager = ours.createFileLockManager('kl-shape');
    expect(Object.keys(myManager).sort()).toEqual(Object.keys(theirManager).sort());
    const a = await theirManager.acquire(target, { payload, metadata: { why: 'shape' } });
    const theirEntry = theirManager.heldEntries()[0]!;
    await a.release();
    const b = await myManager.acquire(target, { payload, metadata: { why: 'shape' } });
    const myEntry = myManager.heldEntries()[0]!;
    expect(Object.keys(myEntry).sort()).toEqual(Object.keys(theirEntry).sort());
    expect(myEntry.metadata).toEqual({ why: 'shape' });
    expect(myEntry.lockPath).toBe(theirEntry.lockPath);
    await b.release();
  });

  it.each([
    ['retry.retries', { retry: { retries: -1 } }],
    ['retry.retries (fraction)', { retry: { retries: 1.5 } }],
    ['retry.factor', { retry: { factor: Number.NaN } }],
    ['retry.minTimeout', { retry: { minTimeout: -5 } }],
    ['retry min > max', { retry: { minTimeout: 10, maxTimeout: 5 } }],
    ['timeoutMs', { timeoutMs: -1 }],
    ['staleMs', { staleMs: Number.NaN }],
    ['compromiseCheckIntervalMs', { compromiseCheckIntervalMs: 0.5 }],
  ])('rejects a bad %s with the same error, before touching the disk', async (_name, bad) => {
    const target = path.join(dir, 'sub', 'bad.json');
    const theirs = await failure(() => stock.acquireFileLock(target, { payload, ...bad }));
    const mine = await failure(() => ours.acquireFileLock(path.join(dir, 'other', 'bad.json'), { payload, ...bad }));
    expect(mine).toEqual(theirs);
    const mineSync = await failure(() =>
      ours.acquireFileLockSync(path.join(dir, 'x', 'bad.json'), { payload, ...bad }),
    );
    expect(mineSync).toEqual(theirs);
    // Nothing was created for our calls: validation comes first.
    expect(() => mkdirSync(path.join(dir, 'other'))).not.toThrow();
  });

  it('lets errors of payload() propagate unchanged', async () => {
    const boom = new Error('payload exploded');
    const target = path.join(dir, 'p.json');
    const theirs = await failure(() =>
      stock.acquireFileLock(target, {
        payload: () => {
          throw boom;
        },
      }),
    );
    const mine = await failure(() =>
      ours.acquireFileLock(target, {
        payload: () => {
          throw boom;
        },
      }),
    );
    expect(mine).toEqual(theirs);
  });

  it('refuses a payload over 1 MiB with code too-large', async () => {
    const huge = () => ({ blob: 'x'.repeat(1024 * 1024) });
    const target = path.join(dir, 'big.json');
    const theirs = await failure(() => stock.acquireFileLock(target, { payload: huge }));
    const mine = await failure(() => ours.acquireFileLock(target, { payload: huge }));
    expect(theirs.code).toBe('too-large');
    expect(mine.code).toBe('too-large');
    const shape = /^sidecar lock payload exceeds limit of 1048576 bytes \(got \d+\)$/;
    expect(theirs.message).toMatch(shape);
    expect(mine.message).toMatch(shape);
  });

  it('times out with code file_lock_timeout, the same fields and message head, and names the holder', async () => {
    const target = path.join(dir, 'busy.json');
    // Stock against stock, to read its exact error.
    const theirHolder = await stock.acquireFileLock(target, { payload });
    const theirs = await failure(() =>
      stock.acquireFileLock(target, { payload, managerKey: 'other', retry: { retries: 0 } }),
    );
    await theirHolder.release();
    const myHolder = await ours.acquireFileLock(target, { payload });
    let mine: ours.FileLockError | undefined;
    try {
      await ours.acquireFileLock(target, { payload, managerKey: 'other', retry: { retries: 0 } });
    } catch (error) {
      mine = error as ours.FileLockError;
    }
    await myHolder.release();
    expect(theirs.code).toBe('file_lock_timeout');
    expect(mine?.code).toBe('file_lock_timeout');
    const head = `file lock timeout for ${path.join(dir, 'busy.json')}`;
    expect(theirs.message).toBe(head);
    expect(mine?.message.startsWith(`${head}: `)).toBe(true);
    expect(mine?.message).toContain(`held by this process (pid ${process.pid}`);
    expect(mine?.lockPath).toBe(`${path.join(dir, 'busy.json')}.lock`);
    expect(mine?.normalizedTargetPath).toBe(path.join(dir, 'busy.json'));
    expect(mine?.holderPid).toBe(process.pid);
  });
});

describe('retry schedules become deadlines', () => {
  it('sums the schedule with every delay at its maximum', () => {
    expect(retryScheduleMs({})).toBe(Number.POSITIVE_INFINITY);
    expect(retryScheduleMs({ retries: 0 })).toBe(0);
    expect(retryScheduleMs({ retries: 3 })).toBe(150); // fs-safe defaults: 50 ms, factor 1
    expect(retryScheduleMs({ retries: 3, minTimeout: 100, factor: 2, maxTimeout: 300 })).toBe(100 + 200 + 300);
    // openclaw 2026.9.6's config write lock: 80 retries, 25..250 ms, factor 1.2, jitter.
    expect(retryScheduleMs({ retries: 80, factor: 1.2, minTimeout: 25, maxTimeout: 250, randomize: true })).toBe(
      18_789,
    );
    // Huge counts are summed in one step.
    expect(retryScheduleMs({ retries: 1e12, minTimeout: 1, maxTimeout: 1 })).toBe(1e12);
  });

  it('waits for the deadline of the schedule, then fails', async () => {
    const target = path.join(dir, 'deadline.json');
    const holder = await ours.acquireFileLock(target, { payload });
    const started = performance.now();
    const error = await failure(() =>
      ours.acquireFileLock(target, { payload, managerKey: 'waiter', retry: { retries: 4, minTimeout: 100 } }),
    );
    const waited = performance.now() - started;
    await holder.release();
    expect(error.code).toBe('file_lock_timeout');
    expect(waited).toBeGreaterThanOrEqual(390);
    expect(waited).toBeLessThan(5000);
  });

  it('takes the smaller of timeoutMs and the schedule', async () => {
    const target = path.join(dir, 'both.json');
    const holder = await ours.acquireFileLock(target, { payload });
    const started = performance.now();
    const error = await failure(() =>
      ours.acquireFileLock(target, { payload, managerKey: 'waiter', timeoutMs: 150, retry: { retries: 1000 } }),
    );
    const waited = performance.now() - started;
    await holder.release();
    expect(error.code).toBe('file_lock_timeout');
    expect(waited).toBeGreaterThanOrEqual(140);
    expect(waited).toBeLessThan(5000);
  });
});

describe('the owner record carries the payload', () => {
  it('stores payload() as the record owner label and shows it to parsePayload of a waiter that gives up', async () => {
    const target = path.join(dir, 'rec.json');
    const holder = await ours.acquireFileLock(target, { payload: () => ({ kind: 'lifecycle', version: 1 }) });
    const { readFileSync } = await import('node:fs');
    const record = JSON.parse(readFileSync(`${target}.lock`, 'utf8')) as Record<string, unknown>;
    expect(record.format).toBe('kernel-lock/1');
    expect(record.pid).toBe(process.pid);
    expect(JSON.parse(record.owner as string)).toEqual({ kind: 'lifecycle', version: 1 });
    const seen: string[] = [];
    const error = await failure(() =>
      ours.acquireFileLock(target, {
        payload,
        managerKey: 'waiter',
        retry: { retries: 0 },
        parsePayload: (raw) => {
          seen.push(raw);
          return JSON.parse(raw);
        },
      }),
    );
    await holder.release();
    expect(error.code).toBe('file_lock_timeout');
    expect(seen.map((raw) => JSON.parse(raw))).toEqual([{ kind: 'lifecycle', version: 1 }]);
  });

  it('keeps the leading keys of a payload too long for the record', async () => {
    const target = path.join(dir, 'long.json');
    const holder = await ours.acquireFileLock(target, {
      payload: () => ({ pid: process.pid, note: 'n'.repeat(300), kind: 'k' }),
    });
    const { readFileSync } = await import('node:fs');
    const record = JSON.parse(readFileSync(`${target}.lock`, 'utf8')) as { owner: string };
    expect(JSON.parse(record.owner)).toEqual({ pid: process.pid, kind: 'k' });
    await holder.release();
  });
});

describe('paths', () => {
  it('derives the lock file from the realpath of the target directory, as fs-safe does', async () => {
    const real = path.join(dir, 'real');
    mkdirSync(real);
    const { symlinkSync } = await import('node:fs');
    symlinkSync(real, path.join(dir, 'link'));
    const viaLink = path.join(dir, 'link', 'state.json');
    const theirs = await stock18.acquireFileLock(viaLink, { payload });
    await theirs.release();
    const mine = await ours.acquireFileLock(viaLink, { payload });
    expect(mine.lockPath).toBe(theirs.lockPath);
    expect(mine.lockPath).toBe(path.join(real, 'state.json.lock'));
    await mine.release();
  });

  it('creates the missing target directory, and honours an explicit lockPath', async () => {
    const target = path.join(dir, 'a', 'b', 'state.json');
    const lockPath = path.join(dir, 'custom.lock');
    const handle = await ours.acquireFileLock(target, { payload, lockPath });
    expect(handle.lockPath).toBe(lockPath);
    expect(handle.normalizedTargetPath).toBe(target);
    await handle.release();
  });

  it('refuses a lockPath outside lockRoot with fs-safe code outside-workspace', async () => {
    const rootDir = path.join(dir, 'root');
    mkdirSync(rootDir);
    const error = await failure(() =>
      ours.acquireFileLock(path.join(dir, 't.json'), {
        payload,
        lockRoot: { rootReal: rootDir },
        lockPath: path.join(dir, 'outside.lock'),
      }),
    );
    expect(error.code).toBe('outside-workspace');
    const inside = await ours.acquireFileLock(path.join(dir, 't.json'), {
      payload,
      lockRoot: { rootReal: rootDir },
      lockPath: path.join(rootDir, 'locks', 't.lock'),
    });
    expect(inside.lockPath).toBe(path.join(rootDir, 'locks', 't.lock'));
    await inside.release();
  });
});

describe('legacy markers of stock fs-safe', () => {
  function marker(target: string, fields: Record<string, unknown>): void {
    writeFileSync(`${target}.lock`, `${JSON.stringify(fields, null, 2)}\n \t \n`);
  }

  it('fails closed with file_lock_stale when the policy finds a marker stale and recovery is fail-closed', async () => {
    const target = path.join(dir, 'stale.json');
    marker(target, { pid: 999_999, createdAt: new Date(Date.now() - 60_000).toISOString() });
    const theirs = await failure(() => stock18.acquireFileLock(target, { payload, staleMs: 1000 }));
    const mine = await failure(() => ours.acquireFileLock(target, { payload, staleMs: 1000 }));
    expect(theirs.code).toBe('file_lock_stale');
    expect(mine.code).toBe('file_lock_stale');
    expect(mine.message.startsWith(theirs.message)).toBe(true);
  });

  it('takes the lock over a stale marker when shouldRemoveStaleLock approves', async () => {
    const target = path.join(dir, 'approved.json');
    marker(target, { pid: 999_999, createdAt: new Date(Date.now() - 60_000).toISOString() });
    const seen: unknown[] = [];
    const handle = await ours.acquireFileLock(target, {
      payload,
      staleMs: 1000,
      staleRecovery: 'remove-if-unchanged',
      shouldRemoveStaleLock: (snapshot) => {
        seen.push(snapshot.payload);
        return true;
      },
    });
    expect(seen).toEqual([expect.objectContaining({ pid: 999_999 })]);
    expect(await handle.verifyStillHeld()).toBe(true);
    await handle.release();
  });

  it('waits for a fresh marker (a live stock holder) and names it when it gives up', async () => {
    const target = path.join(dir, 'fresh.json');
    marker(target, { pid: 4242, createdAt: new Date().toISOString() });
    const error = await failure(() => ours.acquireFileLock(target, { payload, timeoutMs: 300 }));
    expect(error.code).toBe('file_lock_timeout');
    expect(error.message).toContain('stock fs-safe marker of pid 4242');
  });

  it('never judges a kernel-lock record or an empty file as a marker', async () => {
    const target = path.join(dir, 'empty.json');
    writeFileSync(`${target}.lock`, '');
    const handle = await ours.acquireFileLock(target, { payload, retry: { retries: 0 } });
    await handle.release();
    // A record left by a kernel-lock holder that died: nobody holds the kernel lock.
    writeFileSync(
      `${target}.lock`,
      JSON.stringify({ format: 'kernel-lock/1', pid: 999_999, createdAt: new Date().toISOString() }),
    );
    const again = await ours.acquireFileLock(target, { payload, retry: { retries: 0 } });
    await again.release();
  });

  it('ignores markers with legacyMarkers: "ignore"', async () => {
    const target = path.join(dir, 'ignored.json');
    marker(target, { pid: 4242, createdAt: new Date().toISOString() });
    const handle = await ours.acquireFileLock(target, { payload, retry: { retries: 0 }, legacyMarkers: 'ignore' });
    await handle.release();
  });
});
