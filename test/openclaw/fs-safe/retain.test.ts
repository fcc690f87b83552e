// retainOnExit: a holder that never released leaves a claim that its
// successors judge by their own stale policy, and fail closed on. fs-safe
// keeps the sidecar; kernel-lock keeps a marked owner record (the kernel lock
// itself cannot outlive its holder). The runtime's package-lifecycle lock
// (openclaw 2026.9.6, src/infra/package-lifecycle.ts) relies on it: with
// `retries: 0`, `staleRecovery: "fail-closed"`, `shouldReclaim: () => false`
// and `retainOnExit: true`, a start after a lifecycle owner died refuses
// instead of re-running the owner's work beside its surviving children.
// Every scenario runs against this repository and the published packages
// (0.18.1, 0.21.0) as real processes, with the same expectations.
import { existsSync, linkSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseRecord } from '../../../src/lock/owner-record.js';
import { acquireFileLock, createFileLockManager } from '../../../src/openclaw/fs-safe/index.js';
import { type Holder, sleep, tempDir } from '../../helpers.js';
import { type Attempt, attemptIn, failure, holdIn, type Impl, releaseHeld, startAttempt } from './parties.js';

let dir: string;
let cleanup: () => void;
const holders: Holder[] = [];
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kl-fs-safe-retain-'));
});
afterEach(async () => {
  await Promise.all(holders.splice(0).map((h) => h.kill('SIGKILL')));
  cleanup();
});

const IMPLS: Impl[] = ['kernel', 'stock-0.18', 'stock-0.21'];
const OWNER = { kind: 'openclaw-package-lifecycle', version: 1 };

/** The package-lifecycle lock's options (the fixture's "never-stale" policy is its `shouldReclaim: () => false`). */
function lifecycle(lockPath: string, overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    managerKey: 'openclaw.package-lifecycle',
    lockPath,
    staleMs: 0,
    retry: { retries: 0 },
    staleRecovery: 'fail-closed',
    policy: 'never-stale',
    retainOnExit: true,
    payload: OWNER,
    observe: true,
    ...overrides,
  };
}

/** The pid in the payload a lock file carries: a stock sidecar's JSON, or a kernel-lock record's owner label. */
function claimedPid(lockPath: string): number | null {
  const text = readFileSync(lockPath, 'utf8');
  const record = parseRecord(text);
  if (record?.format !== 'kernel-lock/1') return (JSON.parse(text) as { pid?: number }).pid ?? null;
  const label = (record.owner ?? '').replace(/^retainOnExit /, '');
  return label.startsWith('{') ? ((JSON.parse(label) as { pid?: number }).pid ?? null) : null;
}

async function hold(impl: Impl, target: string, options: Record<string, unknown>): Promise<Holder> {
  const holder = await holdIn(impl, target, options);
  holders.push(holder);
  return holder;
}

/** What parsePayload was shown, as the runtime's parseLifecycleLockOwner would read it. */
function owners(attempt: Attempt): Array<{ kind?: unknown; pid?: unknown }> {
  return ((attempt as Attempt & { observed?: unknown[] }).observed ?? []) as Array<{ kind?: unknown; pid?: unknown }>;
}

/** The pids in the payloads parsePayload was shown. */
const pids = (attempt: Attempt): unknown[] => owners(attempt).map((owner) => owner?.pid);

/** A holder ends without releasing: stdin "exit" is process.exit(0) with the lock held. */
async function exitHolding(holder: Holder): Promise<void> {
  holder.child.stdin?.write('exit\n');
  await holder.exited;
}

describe.each(IMPLS)('%s: a retainOnExit holder that never released', (impl) => {
  it('SIGKILLed: the next acquisition under the package-lifecycle policy fails closed, shown the dead owner, and leaves the file', async () => {
    const lock = path.join(dir, '.openclaw-lifecycle-lock');
    const holder = await hold(impl, lock, lifecycle(lock));
    await holder.kill('SIGKILL');
    const left = readFileSync(lock);
    const attempt = await attemptIn(impl, lock, lifecycle(lock));
    expect(attempt).toMatchObject({ ok: false, code: 'file_lock_timeout' });
    expect(attempt.message).toContain(`file lock timeout for ${lock}`);
    // The runtime reads the owner back through parsePayload: dead, so it
    // refuses ("owner cannot be verified") instead of waiting or proceeding.
    expect(owners(attempt)).toContainEqual(expect.objectContaining({ ...OWNER, pid: holder.pid }));
    expect(readFileSync(lock)).toEqual(left);
    expect(claimedPid(lock)).toBe(holder.pid);
  });

  it('SIGKILLed: a policy that calls the claim stale but fails closed gets file_lock_stale, and the file stays', async () => {
    const lock = path.join(dir, 'build.lock');
    const holder = await hold(impl, lock, lifecycle(lock));
    await holder.kill('SIGKILL');
    const left = readFileSync(lock);
    const attempt = await attemptIn(impl, lock, lifecycle(lock, { policy: 'always-stale' }));
    expect(attempt).toMatchObject({ ok: false, code: 'file_lock_stale' });
    expect(attempt.message).toContain(`file lock stale for ${lock}`);
    expect(owners(attempt)).toContainEqual(expect.objectContaining({ pid: holder.pid }));
    expect(readFileSync(lock)).toEqual(left);
  });

  it('SIGKILLed: a reclaiming policy takes the lock over the claim, and its release leaves nothing', async () => {
    const lock = path.join(dir, 'reclaimed.lock');
    const holder = await hold(impl, lock, lifecycle(lock));
    await holder.kill('SIGKILL');
    const attempt = await attemptIn(
      impl,
      lock,
      lifecycle(lock, { policy: 'always-stale', staleRecovery: 'remove-if-unchanged' }),
    );
    expect(attempt).toMatchObject({ ok: true });
    expect(owners(attempt)).toContainEqual(expect.objectContaining({ pid: holder.pid }));
    expect(existsSync(lock)).toBe(false);
    expect(await attemptIn(impl, lock, lifecycle(lock))).toMatchObject({ ok: true });
  });

  it('only a holder that never released leaves a claim: after a clean release the next acquisition proceeds, after a SIGKILL it refuses', async () => {
    const lock = path.join(dir, 'released.lock');
    const released = await hold(impl, lock, lifecycle(lock));
    await releaseHeld(released);
    await released.kill('SIGKILL'); // after its release: nothing of it is retained
    const afterRelease = await attemptIn(impl, lock, lifecycle(lock));
    expect(afterRelease).toMatchObject({ ok: true });
    // (stock also parses the sidecar it has just created: its own payload)
    expect(pids(afterRelease)).not.toContain(released.pid);
    const killed = await hold(impl, lock, lifecycle(lock));
    await killed.kill('SIGKILL');
    const afterKill = await attemptIn(impl, lock, lifecycle(lock));
    expect(afterKill).toMatchObject({ ok: false, code: 'file_lock_timeout' });
    expect(pids(afterKill)).toContain(killed.pid);
  });

  it('exited while holding it (no release): retained with retainOnExit (the next refuses), not without (the next proceeds)', async () => {
    const lock = path.join(dir, 'exited.lock');
    const plain = await hold(impl, lock, lifecycle(lock, { retainOnExit: false }));
    await exitHolding(plain);
    const afterPlain = await attemptIn(impl, lock, lifecycle(lock));
    expect(afterPlain).toMatchObject({ ok: true });
    expect(pids(afterPlain)).not.toContain(plain.pid);
    const retained = await hold(impl, lock, lifecycle(lock));
    await exitHolding(retained);
    const afterRetained = await attemptIn(impl, lock, lifecycle(lock));
    expect(afterRetained).toMatchObject({ ok: false, code: 'file_lock_timeout' });
    expect(pids(afterRetained)).toContain(retained.pid);
  });

  it('a live holder: the next acquisition times out shown the live owner, and proceeds once it releases', async () => {
    const lock = path.join(dir, 'live.lock');
    const holder = await hold(impl, lock, lifecycle(lock));
    const busy = await attemptIn(impl, lock, lifecycle(lock));
    expect(busy).toMatchObject({ ok: false, code: 'file_lock_timeout' });
    // The runtime polls while this owner is alive with its start time.
    expect(owners(busy)).toContainEqual(expect.objectContaining({ ...OWNER, pid: holder.pid }));
    await releaseHeld(holder);
    expect(await attemptIn(impl, lock, lifecycle(lock))).toMatchObject({ ok: true });
  });

  it('a waiter whose live holder is SIGKILLed does not inherit the lock: it judges the claim and fails closed', async () => {
    const lock = path.join(dir, 'waited.lock');
    const holder = await hold(impl, lock, lifecycle(lock));
    const waiter = startAttempt(
      impl,
      lock,
      lifecycle(lock, { retry: { retries: 40, minTimeout: 50, maxTimeout: 50 } }),
    );
    await sleep(600); // waiting: in the kernel (kernel-lock) or between create attempts (stock)
    await holder.kill('SIGKILL');
    const attempt = await waiter;
    expect(attempt).toMatchObject({ ok: false, code: 'file_lock_timeout' });
    expect(owners(attempt)).toContainEqual(expect.objectContaining({ pid: holder.pid }));
    expect(claimedPid(lock)).toBe(holder.pid);
  });

  it('a waiter with the runtime policy (dead owner is stale) gets in once its live holder is SIGKILLed', async () => {
    const lock = path.join(dir, 'waited-reclaim.lock');
    const holder = await hold(impl, lock, lifecycle(lock));
    const waiter = startAttempt(
      impl,
      lock,
      lifecycle(lock, { policy: 'runtime', retry: { retries: 100, minTimeout: 50, maxTimeout: 50 } }),
    );
    await sleep(600);
    await holder.kill('SIGKILL');
    const attempt = await waiter;
    expect(attempt).toMatchObject({ ok: true });
    expect(owners(attempt)).toContainEqual(expect.objectContaining({ pid: holder.pid }));
  });
});

describe('kernel-lock: what retention does not do', () => {
  it('an acquisition without retainOnExit is not blocked by a retained record (stock judges it by its own policy)', async () => {
    const lock = path.join(dir, 'ordinary.lock');
    const holder = await hold('kernel', lock, lifecycle(lock));
    await holder.kill('SIGKILL');
    const ordinary = { lockPath: lock, retry: { retries: 3, minTimeout: 50, maxTimeout: 50 } };
    expect(await attemptIn('kernel', lock, ordinary)).toMatchObject({ ok: true });
    // Stock's default policy calls the sidecar stale only after staleMs
    // (30 s), so an ordinary stock caller waits on it and times out.
    const stockHolder = await hold('stock-0.18', lock, lifecycle(lock));
    await stockHolder.kill('SIGKILL');
    expect(await attemptIn('stock-0.18', lock, ordinary)).toMatchObject({ ok: false, code: 'file_lock_timeout' });
  });

  it('a record left by a holder without retainOnExit is never judged: its kernel lock is free, so is the lock', async () => {
    const lock = path.join(dir, 'ordinary-killed.lock');
    const holder = await hold('kernel', lock, lifecycle(lock, { retainOnExit: false }));
    await holder.kill('SIGKILL');
    expect(claimedPid(lock)).toBe(holder.pid); // the record stayed, unmarked
    const attempt = await attemptIn('kernel', lock, lifecycle(lock));
    expect(attempt).toMatchObject({ ok: true });
    expect(pids(attempt)).not.toContain(holder.pid);
  });
});

describe('kernel-lock: the retained record and its guard', () => {
  const payload = () => ({ ...OWNER, pid: process.pid });

  it('a retainOnExit hold marks its record and holds the retention guard; a release removes both', async () => {
    const lock = path.join(dir, 'marked.lock');
    const handle = await acquireFileLock(lock, { lockPath: lock, payload, retainOnExit: true });
    const record = parseRecord(readFileSync(lock, 'utf8'));
    expect(record?.owner).toBe(`retainOnExit ${JSON.stringify(payload())}`);
    expect(existsSync(`${lock}.retain`)).toBe(true);
    // Another retainOnExit acquisition waits on the guard, and fails naming this process.
    const busy = await attemptIn('kernel', lock, lifecycle(lock));
    expect(busy).toMatchObject({ ok: false, code: 'file_lock_timeout' });
    expect(busy.message).toContain(`held by pid ${process.pid}`);
    expect(owners(busy)).toEqual([payload()]);
    await handle.release();
    expect(existsSync(lock)).toBe(false);
    expect(existsSync(`${lock}.retain`)).toBe(false);
  });

  it('a clean release clears the mark even where the file outlives the release', async () => {
    const lock = path.join(dir, 'cleared.lock');
    const handle = await acquireFileLock(lock, { lockPath: lock, payload, retainOnExit: true });
    const witness = `${lock}.witness`;
    linkSync(lock, witness); // a second name for the inode: it outlives the unlink
    expect(statSync(witness).size).toBeGreaterThan(0);
    await handle.release();
    expect(statSync(witness).size).toBe(0);
  });

  it('a reentrant acquisition cannot add retention to a hold taken without it (fs-safe upgrades; we refuse)', async () => {
    const lock = path.join(dir, 'upgrade.lock');
    const manager = createFileLockManager('kl-retain-upgrade');
    const plain = await manager.acquire(lock, { lockPath: lock, payload, reentrantOwner: 'me' });
    const error = await failure<Error & { code: string }>(() =>
      manager.acquire(lock, { lockPath: lock, payload, reentrantOwner: 'me', retainOnExit: true }),
    );
    expect(error).toMatchObject({ name: 'FsSafeError', code: 'helper-unavailable' });
    expect(error.message).toContain(lock);
    await plain.release();
    // The other way round joins: the hold stays retained.
    const retained = await manager.acquire(lock, { lockPath: lock, payload, reentrantOwner: 'me', retainOnExit: true });
    const joined = await manager.acquire(lock, { lockPath: lock, payload, reentrantOwner: 'me' });
    await joined.release();
    expect(parseRecord(readFileSync(lock, 'utf8'))?.owner).toMatch(/^retainOnExit /);
    await retained.release();
  });

  it('a lock file whose content is not a record cannot carry the mark: refused, and left as it was', async () => {
    const lock = path.join(dir, 'foreign.lock');
    writeFileSync(lock, 'not a lock record\n');
    const error = await failure<Error & { code: string }>(() =>
      acquireFileLock(lock, { lockPath: lock, payload, retainOnExit: true }),
    );
    expect(error).toMatchObject({ name: 'FsSafeError', code: 'helper-unavailable' });
    expect(readFileSync(lock, 'utf8')).toBe('not a lock record\n');
    expect(existsSync(`${lock}.retain`)).toBe(false);
  });
});
