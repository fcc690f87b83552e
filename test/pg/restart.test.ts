// The server restarts (a fast shutdown, then a crash: immediate shutdown):
// every holder's signal aborts at once, on the shared session and on
// waiting sessions alike; a wait in progress fails; the engine reconnects
// for the next lock; fencing tokens keep growing across the crash (the
// token sequence logs ahead and is recovered past every token handed out).
// A private cluster: restarting the shared one would disturb other files.
// It also gets a streaming standby, to which the engine must refuse to lock.
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, expect } from 'vitest';
import { PgLockError, type PgLockHandle, PgLocks } from '../../dist/pg.js';
import { clusterScript, pgIt as it, type PgTestEnv, pgEnv, startCluster, stopCluster } from './helpers.js';

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

it('refuses a standby: its advisory locks would exclude nobody on the primary', async () => {
  const standby = `${dir}/standby`;
  const port = env.port + 1000;
  // The server's own user: as root, the cluster's system user (runuser); a normal user runs the cluster itself.
  const asServer = (...args: string[]): void => {
    if (process.getuid?.() === 0) execFileSync('runuser', ['-u', env.osUser, '--', ...args], { stdio: 'pipe' });
    else execFileSync(args[0]!, args.slice(1), { stdio: 'pipe' });
  };
  mkdirSync(`${standby}/socket`, { recursive: true });
  execFileSync('chown', ['-R', env.osUser, standby]);
  asServer(
    `${env.bin}/pg_basebackup`,
    '-h',
    `${env.dir}/socket`,
    '-p',
    String(env.port),
    '-U',
    env.osUser,
    '-D',
    `${standby}/data`,
    '-R',
    '-X',
    'stream',
  );
  const start = (): void => {
    try {
      asServer(
        `${env.bin}/pg_ctl`,
        '-D',
        `${standby}/data`,
        '-l',
        `${standby}/server.log`,
        '-o',
        `-c listen_addresses='' -p ${port} -k ${standby}/socket -c max_connections=300`,
        '-w',
        'start',
      );
    } catch (error) {
      throw new Error(`the standby did not start: ${readFileSync(`${standby}/server.log`, 'utf8').slice(-2000)}`, {
        cause: error,
      });
    }
  };
  start();
  try {
    const locks = new PgLocks(`postgresql://klpg_app@${encodeURIComponent(`${standby}/socket`)}:${port}/klpg_test`);
    const error = (await locks.lock('standby').catch((e: unknown) => e)) as PgLockError;
    expect(error).toBeInstanceOf(PgLockError);
    expect(error.code).toBe('ERR_KERNEL_LOCK_PG_STANDBY');
    expect(error.message).toContain('target_session_attrs=read-write');
    await locks.close();
  } finally {
    asServer(`${env.bin}/pg_ctl`, '-D', `${standby}/data`, '-m', 'immediate', '-w', 'stop');
  }
}, 60_000);
