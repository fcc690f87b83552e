// The in-process half of the contract: manager domains, owner-scoped
// reentrancy, heldEntries/drain/reset, the test-state helpers, withFileLock,
// the synchronous API, process defaults, and onCompromised without a timer.
import { existsSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  acquireFileLock,
  acquireFileLockSync,
  configureFsSafeLocks,
  createFileLockManager,
  drainFileLockManagerForTest,
  type FileLockError,
  getFsSafeLockConfig,
  resetFileLockManagerForTest,
  withFileLock,
  withFileLockSync,
} from '../../../src/openclaw/fs-safe/index.js';
import { sleep, tempDir } from '../../helpers.js';
import { failure as failureOf } from './parties.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kl-fs-safe-mgr-'));
});
afterEach(() => cleanup());

const payload = () => ({ pid: process.pid });

const failure = (run: () => unknown) => failureOf<FileLockError>(run);

describe('owner-scoped reentrancy', () => {
  it('shares the lock with the same reentrantOwner and keeps it until the last reference', async () => {
    const target = path.join(dir, 'session.jsonl');
    const managerKey = 'kl-reentrant';
    const outer = await acquireFileLock(target, { managerKey, reentrantOwner: 'op-1', payload });
    const inner = await acquireFileLock(target, {
      managerKey,
      reentrantOwner: 'op-1',
      payload,
      retry: { retries: 0 },
    });
    expect(inner.lockPath).toBe(outer.lockPath);
    await inner.release();
    await inner.release(); // idempotent: does not drop outer's reference
    expect(await outer.verifyStillHeld()).toBe(true);
    expect(existsSync(outer.lockPath)).toBe(true);
    await outer.release();
    expect(existsSync(outer.lockPath)).toBe(false); // the last reference released and removed it
  });

  it('makes a different or missing owner wait (and time out) like any other acquirer', async () => {
    const target = path.join(dir, 'other-owner.json');
    const managerKey = 'kl-owners';
    const held = await acquireFileLock(target, { managerKey, reentrantOwner: 'a', payload });
    for (const reentrantOwner of ['b', undefined]) {
      const error = await failure(() =>
        acquireFileLock(target, { managerKey, reentrantOwner, payload, retry: { retries: 0 } }),
      );
      expect(error.code).toBe('file_lock_timeout');
    }
    await held.release();
  });

  it('arbitrates by target inside a domain even through another lockPath, without polling', async () => {
    const target = path.join(dir, 't.json');
    const manager = createFileLockManager('kl-alt-path');
    const first = await manager.acquire(target, { payload });
    const started = performance.now();
    const second = manager.acquire(target, { payload, lockPath: path.join(dir, 'alt.lock'), timeoutMs: 5000 });
    await sleep(100);
    await first.release();
    const handle = await second;
    expect(performance.now() - started).toBeLessThan(1000);
    await handle.release();
  });
});

describe('managers', () => {
  it('lists held entries with metadata and acquiredAt, force-releases, drains and resets', async () => {
    const manager = createFileLockManager('kl-entries');
    const before = Date.now();
    const a = await manager.acquire(path.join(dir, 'a.json'), { payload, metadata: { role: 'a' } });
    const b = await manager.acquire(path.join(dir, 'b.json'), { payload, metadata: { role: 'b' } });
    const entries = manager.heldEntries();
    expect(entries.map((e) => e.metadata)).toEqual([{ role: 'a' }, { role: 'b' }]);
    expect(entries[0]!.acquiredAt).toBeGreaterThanOrEqual(before);
    expect(await entries[0]!.forceRelease()).toBe(true);
    expect(await entries[0]!.forceRelease()).toBe(false);
    expect(await a.verifyStillHeld()).toBe(false);
    expect(manager.heldEntries()).toHaveLength(1);
    await manager.drain();
    expect(manager.heldEntries()).toHaveLength(0);
    expect(await b.verifyStillHeld()).toBe(false);
    await b.release(); // a stale handle's release is harmless
    const c = await manager.acquire(path.join(dir, 'c.json'), { payload });
    manager.reset();
    expect(manager.heldEntries()).toHaveLength(0);
    expect(await c.verifyStillHeld()).toBe(false);
    // Released for real: another process-domain can take it at once.
    const again = await acquireFileLock(path.join(dir, 'c.json'), { payload, retry: { retries: 0 } });
    await again.release();
  });

  it('shares one table per key, as fs-safe does', async () => {
    const held = await createFileLockManager('kl-shared').acquire(path.join(dir, 's.json'), { payload });
    expect(createFileLockManager('kl-shared').heldEntries()).toHaveLength(1);
    await held.release();
    expect(createFileLockManager('kl-shared').heldEntries()).toHaveLength(0);
  });

  it('has the test-state helpers on the default domain of a target', async () => {
    const target = path.join(dir, 'helpers.json');
    const a = await acquireFileLock(target, { payload });
    await drainFileLockManagerForTest(target);
    expect(await a.verifyStillHeld()).toBe(false);
    const b = await acquireFileLock(target, { payload, managerKey: 'kl-helper-key' });
    resetFileLockManagerForTest(target, 'kl-helper-key');
    expect(await b.verifyStillHeld()).toBe(false);
  });
});

describe('withFileLock', () => {
  it('returns the result and releases; releases when the callback throws, rethrowing its error', async () => {
    const target = path.join(dir, 'with.json');
    expect(await withFileLock(target, { payload }, async () => 42)).toBe(42);
    const boom = new Error('callback failed');
    await expect(
      withFileLock(target, { payload }, async () => {
        throw boom;
      }),
    ).rejects.toBe(boom);
    const free = await acquireFileLock(target, { payload, managerKey: 'x', retry: { retries: 0 } });
    await free.release();
  });
});

describe('the synchronous API', () => {
  it('acquires, shares with the same owner, releases', () => {
    const target = path.join(dir, 'sync.json');
    const a = acquireFileLockSync(target, { payload, reentrantOwner: 'boot' });
    const b = acquireFileLockSync(target, { payload, reentrantOwner: 'boot' });
    expect(b.verifyStillHeld()).toBe(true);
    b.release();
    expect(a.verifyStillHeld()).toBe(true);
    a.release();
    expect(a.verifyStillHeld()).toBe(false);
    expect(withFileLockSync(target, { payload }, () => 'done')).toBe('done');
  });

  it('fails at once with file_lock_timeout instead of blocking its own thread for the whole budget', async () => {
    const target = path.join(dir, 'self.json');
    const held = acquireFileLockSync(target, { payload });
    const started = performance.now();
    const error = await failure(() => acquireFileLockSync(target, { payload, timeoutMs: 10_000 }));
    expect(error.code).toBe('file_lock_timeout');
    expect(performance.now() - started).toBeLessThan(1000);
    // Also when the asynchronous API holds it in this thread.
    held.release();
    const asyncHeld = await acquireFileLock(target, { payload });
    const again = await failure(() => acquireFileLockSync(target, { payload, timeoutMs: 10_000 }));
    expect(again.code).toBe('file_lock_timeout');
    await asyncHeld.release();
  });

  it('rejects an asynchronous payload with a TypeError', () => {
    expect(() =>
      acquireFileLockSync(path.join(dir, 'p.json'), {
        payload: (async () => ({ pid: 1 })) as unknown as () => { pid: number },
      }),
    ).toThrow(TypeError);
    // Nothing is left held.
    acquireFileLockSync(path.join(dir, 'p.json'), { payload, retry: { retries: 0 } }).release();
  });
});

describe('process defaults (configureFsSafeLocks)', () => {
  it('fills timeoutMs and retry when a call omits them; a call wins', async () => {
    const saved = getFsSafeLockConfig();
    const target = path.join(dir, 'cfg.json');
    const held = await acquireFileLock(target, { payload });
    try {
      configureFsSafeLocks({ timeoutMs: 200, retry: { retries: 1000 } });
      const started = performance.now();
      const error = await failure(() => acquireFileLock(target, { payload, managerKey: 'w' }));
      expect(error.code).toBe('file_lock_timeout');
      expect(performance.now() - started).toBeLessThan(3000);
      const zero = await failure(() => acquireFileLock(target, { payload, managerKey: 'w', timeoutMs: 0 }));
      expect(zero.code).toBe('file_lock_timeout');
    } finally {
      configureFsSafeLocks(saved);
      await held.release();
    }
  });
});

describe('onCompromised: inotify, not a timer', () => {
  it('fires once, within a second, when the lock file is removed while held; verifyStillHeld turns false', async () => {
    const target = path.join(dir, 'watched.json');
    const calls: unknown[] = [];
    const handle = await acquireFileLock(target, { payload, onCompromised: (info) => calls.push(info) });
    expect(await handle.verifyStillHeld()).toBe(true);
    unlinkSync(handle.lockPath);
    const deadline = performance.now() + 1000;
    while (calls.length === 0 && performance.now() < deadline) await sleep(10);
    expect(calls).toEqual([{ lockPath: handle.lockPath, normalizedTargetPath: handle.normalizedTargetPath }]);
    expect(await handle.verifyStillHeld()).toBe(false);
    await handle.release();
    expect(calls).toHaveLength(1);
  });

  it('fires when the file is replaced by a rename over it', async () => {
    const target = path.join(dir, 'replaced.json');
    const calls: unknown[] = [];
    const handle = await acquireFileLock(target, { payload, onCompromised: (info) => calls.push(info) });
    writeFileSync(path.join(dir, 'impostor'), '{}');
    renameSync(path.join(dir, 'impostor'), handle.lockPath);
    const deadline = performance.now() + 1000;
    while (calls.length === 0 && performance.now() < deadline) await sleep(10);
    expect(calls).toHaveLength(1);
    await handle.release();
    // The impostor is not ours: release left it in place.
    expect(existsSync(handle.lockPath)).toBe(true);
  });

  it('stays silent while the lock is intact, and after release', async () => {
    const target = path.join(dir, 'quiet.json');
    const calls: unknown[] = [];
    const handle = await acquireFileLock(target, {
      payload,
      onCompromised: (info) => calls.push(info),
      compromiseCheckIntervalMs: 5,
    });
    await sleep(100);
    await handle.release();
    await sleep(50);
    expect(calls).toHaveLength(0);
  });
});
