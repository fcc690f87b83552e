// The server restarts (a fast shutdown, then a crash: immediate shutdown):
// every holder's signal aborts at once, on the shared session and on
// waiting sessions alike; a wait in progress fails; the engine reconnects
// for the next lock; fencing tokens keep growing across the crash (the
// token sequence logs ahead and is recovered past every token handed out).
// A private cluster: restarting the shared one would disturb other files.
import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { PgLockError, type PgLockHandle, PgLocks } from '../../dist/pg.js';
import { clusterScript, type PgTestEnv, pgEnv, startCluster, stopCluster } from './helpers.js';

pgEnv(); // the machine's PostgreSQL, as found for the shared cluster; fails with instructions otherwise
const dir = `/tmp/klpg-restart-${process.pid}`;
let env: PgTestEnv;
const engines: PgLocks[] = [];

beforeAll(() => {
  env = startCluster(dir);
});

afterAll(async () => {
  for (const e of engines) await e.close();
  stopCluster(dir);
});

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function holdSome(locks: PgLocks, other: PgLocks): Promise<{ held: PgLockHandle[]; waiting: Promise<unknown> }> {
  const a = await locks.lock('restart-a');
  const b = await locks.lock('restart-b', { mode: 'shared' });
  // 'restart-c' ends up held by a waiting session of its own.
  const blocker = await other.lock('restart-c');
  const pending = locks.lock('restart-c', { timeout: 30_000 });
  await sleep(100);
  await blocker.release();
  const c = await pending;
  // And one wait in progress.
  await other.lock('restart-d');
  const waiting = locks.lock('restart-d').catch((e: unknown) => e);
  await sleep(100);
  return { held: [a, b, c], waiting };
}

for (const mode of ['fast', 'immediate'] as const) {
  it(`${mode === 'fast' ? 'a fast' : 'an immediate'} restart aborts every holder's signal and fails waits; locking works again; tokens grow`, async () => {
    const locks = new PgLocks(env.url, { deadPeerMs: 3000 });
    const other = new PgLocks(env.url, { deadPeerMs: 3000 });
    engines.push(locks, other);
    const { held, waiting } = await holdSome(locks, other);
    expect(held[2]!.backendPid).not.toBe(held[0]!.backendPid);
    const before = held
      .map((h) => h.token)
      .sort((x, y) => (x < y ? -1 : 1))
      .at(-1)!;
    const restarted = performance.now();
    execFileSync(clusterScript, ['restart', dir, mode], { stdio: 'ignore' });
    for (const handle of held) {
      const deadline = performance.now() + 5000;
      while (!handle.signal.aborted && performance.now() < deadline) await sleep(10);
      expect(handle.signal.aborted).toBe(true);
      expect((handle.signal.reason as PgLockError).code).toBe('ERR_KERNEL_LOCK_PG_LOST');
      expect(handle.verify()).toBe(false);
    }
    expect(performance.now() - restarted).toBeLessThan(10_000);
    const failed = await waiting;
    expect(failed).toBeInstanceOf(PgLockError);
    expect((failed as PgLockError).code).toBe('ERR_KERNEL_LOCK_PG_LOST');
    const again = await locks.lock('restart-a', { timeout: 10_000 });
    expect(again.token).toBeGreaterThan(before);
    await again.release();
    await locks.close();
    await other.close();
  }, 60_000);
}
