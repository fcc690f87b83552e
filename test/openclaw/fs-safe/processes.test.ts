// The contract between processes: real holders, real SIGKILL, real pid
// namespaces, and the published @openclaw/fs-safe as a peer. Each test
// states the rule it proves and can fail: the stock backend, run in the same
// harness, shows the failures these rules exclude.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { acquireFileLock, type FileLockError } from '../../../src/openclaw/fs-safe/index.js';
import { type Holder, sleep, tempDir } from '../../helpers.js';
import { unshare } from '../../privileges.js';
import { attemptIn, failure as failureOf, holdIn, releaseHeld, startAttempt } from './parties.js';

let dir: string;
let cleanup: () => void;
const holders: Holder[] = [];
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kl-fs-safe-proc-'));
});
afterEach(async () => {
  await Promise.all(holders.splice(0).map((h) => h.kill('SIGKILL')));
  cleanup();
});

const payload = () => ({ pid: process.pid, createdAt: new Date().toISOString() });
// openclaw 2026.9.6's config write lock: 80 retries of 25..250 ms (about 19 s at most).
const CONFIG_RETRY = { retries: 80, factor: 1.2, minTimeout: 25, maxTimeout: 250, randomize: true };
const PIDNS = unshare('--pid', '--fork', '--mount-proc', '--kill-child');

const failure = (run: () => unknown) => failureOf<FileLockError>(run);

describe('a dead holder releases at once', () => {
  it('a SIGKILLed holder lets the waiter in within a second, whatever staleMs says', async () => {
    const target = path.join(dir, 'config.json');
    const holder = await holdIn('kernel', target, { staleMs: 3_600_000 });
    holders.push(holder);
    const waiting = acquireFileLock(target, { payload, staleMs: 3_600_000, retry: CONFIG_RETRY });
    await sleep(300); // the waiter is asleep in the kernel by now
    const killedAt = performance.now();
    await holder.kill('SIGKILL');
    const handle = await waiting;
    const afterKill = performance.now() - killedAt;
    expect(afterKill).toBeLessThan(1000);
    expect(await handle.verifyStillHeld()).toBe(true);
    await handle.release();
  });

  it('the same for a holder in another pid namespace (its pid means nothing here)', async () => {
    const target = path.join(dir, 'auth.json');
    const holder = await holdIn('kernel', target, {}, PIDNS);
    holders.push(holder);
    const waiting = acquireFileLock(target, { payload, staleMs: 180_000, retry: CONFIG_RETRY });
    await sleep(300);
    const killedAt = performance.now();
    await holder.kill('SIGKILL'); // unshare --kill-child takes the holder with it
    const handle = await waiting;
    expect(performance.now() - killedAt).toBeLessThan(1000);
    await handle.release();
  });
});

describe('a live holder is never overlapped', () => {
  it('in another pid namespace: the waiter times out naming it, and gets the lock once it releases', async () => {
    const target = path.join(dir, 'profiles.json');
    const holder = await holdIn('kernel', target, {}, PIDNS);
    holders.push(holder);
    const error = await failure(() => acquireFileLock(target, { payload, staleMs: 0, timeoutMs: 1500 }));
    expect(error.code).toBe('file_lock_timeout');
    expect(error.holderPid).not.toBeNull();
    expect(error.holderPid).not.toBe(process.pid);
    const waiting = acquireFileLock(target, { payload, retry: CONFIG_RETRY });
    await sleep(200);
    await releaseHeld(holder);
    const handle = await waiting;
    await handle.release();
  });

  it('the stock backend under the runtime policy takes it from that live holder (what the rule excludes)', async () => {
    // openclaw 2026.9.6 configures fs-safe to reclaim a marker whose pid is
    // dead or has another start time here. A holder in another pid namespace
    // records its own pid (1 or 2 there), which names nothing or someone else
    // here: the stock waiter removes a live holder's marker and proceeds.
    const target = path.join(dir, 'stolen.json');
    const holder = await holdIn('stock-0.18', target, {}, PIDNS);
    holders.push(holder);
    const result = await attemptIn('stock-0.18', target, { policy: 'runtime', retry: { retries: 5 } });
    expect(result.ok).toBe(true); // overlapped: the holder is alive and still "holds"
    expect(holder.child.exitCode).toBeNull();
  });

  it('staleMs never steals: a holder older than staleMs still excludes', async () => {
    const target = path.join(dir, 'old.json');
    const holder = await holdIn('kernel', target);
    holders.push(holder);
    await sleep(150);
    const error = await failure(() => acquireFileLock(target, { payload, staleMs: 1, timeoutMs: 500 }));
    expect(error.code).toBe('file_lock_timeout');
    const result = await attemptIn('kernel', target, {
      staleMs: 0,
      staleRecovery: 'remove-if-unchanged',
      timeoutMs: 300,
    });
    expect(result).toMatchObject({ ok: false, code: 'file_lock_timeout' });
  });
});

describe('waiting is a kernel wait, not a poll', () => {
  it('a waiter with a 2 s backoff still gets the lock the moment the holder releases', async () => {
    const target = path.join(dir, 'slow-backoff.json');
    const holder = await holdIn('kernel', target);
    holders.push(holder);
    const started = performance.now();
    const waiting = acquireFileLock(target, { payload, retry: { retries: 3, minTimeout: 2000, maxTimeout: 2000 } });
    await sleep(100);
    await releaseHeld(holder);
    const handle = await waiting;
    // A poller sleeping 2 s between attempts could not be in before ~2 s.
    expect(performance.now() - started).toBeLessThan(1000);
    await handle.release();
  });

  it('the synchronous API blocks in the kernel and wakes when the holder dies', async () => {
    const target = path.join(dir, 'sync.json');
    const holder = await holdIn('kernel', target);
    holders.push(holder);
    const attempt = startAttempt('kernel', target, { sync: true, retry: { retries: 2, minTimeout: 5000 } });
    let settled = false;
    void attempt.then(() => {
      settled = true;
    });
    await sleep(800);
    expect(settled).toBe(false); // still blocked on the live holder
    const killedAt = performance.now();
    await holder.kill('SIGKILL');
    const result = await attempt;
    expect(result.ok).toBe(true);
    expect(performance.now() - killedAt).toBeLessThan(3000);
  });
});

describe('mixed fleets: stock @openclaw/fs-safe peers', () => {
  it('a live stock holder (marker, no kernel lock) is respected, and its release lets us in', async () => {
    const target = path.join(dir, 'mixed.json');
    const holder = await holdIn('stock-0.18', target);
    holders.push(holder);
    const error = await failure(() => acquireFileLock(target, { payload, timeoutMs: 600 }));
    expect(error.code).toBe('file_lock_timeout');
    expect(error.message).toContain(`stock fs-safe marker of pid ${holder.pid}`);
    const waiting = acquireFileLock(target, { payload, retry: { retries: 100, minTimeout: 20, maxTimeout: 50 } });
    await sleep(100);
    await releaseHeld(holder);
    const handle = await waiting;
    await handle.release();
  });

  it('a stock waiter (runtime policy) waits for our live holder and gets in after our release', async () => {
    const target = path.join(dir, 'mixed2.json');
    const handle = await acquireFileLock(target, { payload });
    const busy = await attemptIn('stock-0.21', target, { policy: 'runtime', retry: { retries: 3, minTimeout: 50 } });
    expect(busy).toMatchObject({ ok: false, code: 'file_lock_timeout' });
    await handle.release();
    // Released: our lock file is gone, so stock's O_EXCL create succeeds.
    expect(existsSync(`${target}.lock`)).toBe(false);
    const after = await attemptIn('stock-0.21', target, { policy: 'runtime', retry: { retries: 3, minTimeout: 50 } });
    expect(after.ok).toBe(true);
  });
});
