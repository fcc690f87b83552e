// The PostgreSQL engine's contract, against a real server (the test cluster
// from scripts/pg-cluster.sh): the same shapes as the kernel engine, waits
// that run on the server, no stacking within a process, shared and
// exclusive modes, timeouts and cancels that leave nothing behind, holders
// that are named, lost sessions that are reported.
import { spawn } from 'node:child_process';
import net from 'node:net';
import os from 'node:os';
import type pg from 'pg';
import { afterAll, beforeAll, describe, expect } from 'vitest';
import { LockTimeoutError } from '../../dist/index.js';
import { PgLockError, PgLocks, PgLockTimeoutError } from '../../dist/pg.js';
import { root } from '../helpers.js';
import { Agent, adminClient, advisoryLocks, pgIt as it, pgEnv } from './helpers.js';

const env = pgEnv();
const OPTIONS = { deadPeerMs: 3000, namespace: `contract-${process.pid}` };
let admin: pg.Client;
const engines: PgLocks[] = [];
const agents: Agent[] = [];

function engine(options: object = {}): PgLocks {
  const locks = new PgLocks(env.url, { ...OPTIONS, ...options });
  engines.push(locks);
  return locks;
}

/** An engine already connected: a lock's timeout also bounds connecting, and these tests time the wait alone. */
async function connected(options: object = {}): Promise<PgLocks> {
  const locks = engine(options);
  await locks.connect();
  return locks;
}

async function agent(): Promise<Agent> {
  const a = await Agent.start(env.url, OPTIONS);
  agents.push(a);
  return a;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Backends that wait for an advisory lock on the server, with their wait event. */
async function serverWaiters(key: bigint): Promise<{ pid: number; wait_event: string | null; state: string }[]> {
  const locks = (await advisoryLocks(admin, [key])).filter((l) => !l.granted);
  if (locks.length === 0) return [];
  const { rows } = await admin.query('SELECT pid, wait_event, state FROM pg_stat_activity WHERE pid = ANY($1)', [
    locks.map((l) => l.pid),
  ]);
  return rows;
}

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time');
    await sleep(20);
  }
}

beforeAll(async () => {
  admin = await adminClient(env);
});

afterAll(async () => {
  for (const a of agents) await a.kill();
  for (const e of engines) await e.close();
  await admin?.end();
});

describe('kernel-lock/pg contract', () => {
  it('has the core shapes: lock, tryLock, withLock, release, await using, verify, token, signal', async () => {
    const locks = engine();
    const handle = await locks.lock('shapes', { owner: 'shape test' });
    expect(handle.name).toBe('shapes');
    expect(handle.mode).toBe('exclusive');
    expect(handle.verify()).toBe(true);
    expect(handle.signal.aborted).toBe(false);
    expect(typeof handle.token).toBe('bigint');
    expect(await locks.tryLock('shapes')).toBeNull(); // this process, same name: excluded
    const inspection = await locks.inspect('shapes');
    expect(inspection.state).toBe('held-by-self');
    const record = inspection.holders[0]!.record!;
    expect(record).toMatchObject({ name: 'shapes', host: os.hostname(), pid: process.pid, owner: 'shape test' });
    expect(record.token).toBe(handle.token);
    await handle.release();
    await handle.release(); // idempotent
    expect(handle.verify()).toBe(false);
    expect(handle.released).toBe(true);
    expect(handle.signal.aborted).toBe(false); // release is not a loss
    expect((await locks.inspect('shapes')).state).toBe('free');
    {
      await using held = await locks.lock('shapes');
      expect((await locks.inspect('shapes')).held).toBe(true);
      expect(held.token).toBeGreaterThan(handle.token);
    }
    expect((await locks.inspect('shapes')).held).toBe(false);
    const result = await locks.withLock('shapes', async (lock) => {
      expect(lock.verify()).toBe(true);
      return 42;
    });
    expect(result).toBe(42);
    await expect(locks.withLock('shapes', () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect((await locks.inspect('shapes')).held).toBe(false);
    expect(await advisoryLocks(admin, [locks.keyOf('shapes')])).toEqual([]);
  });

  it('hands the lock from a holder in another process to a waiter that waits on the server', async () => {
    const holder = await agent();
    const locks = engine();
    holder.send({ op: 'lock', id: 'h', name: 'handoff', owner: 'the holder' });
    const granted = await holder.on('granted', 'h');
    const started = performance.now();
    const waiting = locks.lock('handoff', { timeout: 20_000 });
    const key = locks.keyOf('handoff');
    // The wait is a backend sleeping in the server's lock manager.
    await until(async () => (await serverWaiters(key)).length === 1);
    const [waiter] = await serverWaiters(key);
    expect(waiter).toMatchObject({ wait_event: 'advisory', state: 'active' });
    await sleep(300);
    holder.send({ op: 'release', id: 'h' });
    const handle = await waiting;
    expect(performance.now() - started).toBeGreaterThanOrEqual(300);
    expect(handle.backendPid).toBe(waiter!.pid); // the session that waited holds it
    expect(handle.token).toBeGreaterThan(BigInt(granted.token as string));
    expect(handle.verify()).toBe(true);
    await handle.release();
    expect(await advisoryLocks(admin, [key])).toEqual([]);
  });

  it('does not stack: two calls of one process exclude each other; shared ones hold on two sessions', async () => {
    const locks = engine();
    const key = locks.keyOf('stack');
    const first = await locks.lock('stack');
    let secondDone = false;
    const second = locks.lock('stack', { timeout: 20_000 }).then((h) => {
      secondDone = true;
      return h;
    });
    await until(async () => (await serverWaiters(key)).length === 1);
    await sleep(200);
    expect(secondDone).toBe(false);
    await first.release();
    const h2 = await second;
    expect(h2.backendPid).not.toBe(first.backendPid);
    await h2.release();

    const a = await locks.lock('stack', { mode: 'shared' });
    const b = await locks.lock('stack', { mode: 'shared' });
    expect(a.backendPid).not.toBe(b.backendPid);
    const rows = await advisoryLocks(admin, [key]);
    expect(rows.map((r) => r.mode).sort()).toEqual(['ShareLock', 'ShareLock']);
    await a.release();
    // b still holds: an exclusive try from another process fails.
    const other = engine();
    expect(await other.tryLock('stack')).toBeNull();
    await b.release();
    const x = await other.tryLock('stack');
    expect(x).not.toBeNull();
    await x!.release();
    expect(await advisoryLocks(admin, [key])).toEqual([]);
  });

  it('shared holders coexist; exclusive waits for every one of them and excludes new shared ones', async () => {
    const r1 = engine();
    const r2 = engine();
    const w = engine();
    const s1 = await r1.lock('rw', { mode: 'shared' });
    const s2 = await r2.lock('rw', { mode: 'shared' });
    expect(await w.tryLock('rw')).toBeNull();
    const exclusive = w.lock('rw', { timeout: 20_000 });
    await until(async () => (await serverWaiters(w.keyOf('rw'))).length === 1);
    await s1.release();
    await sleep(100);
    expect((await w.inspect('rw')).holders).toHaveLength(1);
    await s2.release();
    const x = await exclusive;
    expect(await r1.tryLock('rw', { mode: 'shared' })).toBeNull();
    await x.release();
    const s3 = await r1.tryLock('rw', { mode: 'shared' });
    expect(s3).not.toBeNull();
    await s3!.release();
  });

  it('times out with LockTimeoutError (ELOCKED) naming the holder: host, pid, owner, token', async () => {
    const holder = await agent();
    holder.send({ op: 'lock', id: 'h', name: 'busy', owner: 'nightly import' });
    const granted = await holder.on('granted', 'h');
    const locks = await connected();
    const started = performance.now();
    const error = await locks.lock('busy', { timeout: 300 }).catch((e: unknown) => e);
    const waited = performance.now() - started;
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect(error).toBeInstanceOf(PgLockTimeoutError);
    const timeout = error as PgLockTimeoutError;
    expect(timeout.code).toBe('ELOCKED');
    expect(waited).toBeGreaterThanOrEqual(290);
    expect(waited).toBeLessThan(3000);
    expect(timeout.message).toContain(`host ${os.hostname()} pid ${holder.child.pid}`);
    expect(timeout.message).toContain('"nightly import"');
    expect(timeout.message).toContain(`token ${granted.token}`);
    expect(timeout.inspection?.holders[0]?.record?.pid).toBe(holder.child.pid);
    // timeout 0: one attempt, no wait.
    await expect(locks.lock('busy', { timeout: 0 })).rejects.toBeInstanceOf(LockTimeoutError);
    expect(await advisoryLocks(admin, [locks.keyOf('busy')])).toHaveLength(1); // only the holder
    holder.send({ op: 'release', id: 'h' });
    await holder.on('released', 'h');
  });

  it('names a holder that keeps no owner record by its backend and application', async () => {
    const locks = await connected();
    const key = locks.keyOf('foreign');
    await admin.query("SET application_name = 'some other program'");
    await admin.query('SELECT pg_advisory_lock($1)', [key.toString()]);
    try {
      const error = (await locks.lock('foreign', { timeout: 100 }).catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(PgLockTimeoutError);
      expect(error.message).toContain('"some other program"');
      expect(error.message).toContain('keeps no kernel-lock record');
      const scan = await locks.scan();
      const entry = scan.find((i) => i.key === key);
      expect(entry?.name).toBeNull();
      expect(entry?.holders[0]?.applicationName).toBe('some other program');
    } finally {
      await admin.query('SELECT pg_advisory_unlock($1)', [key.toString()]);
    }
  });

  it('cancels a wait on abort: AbortError at once, no wait left on the server, a later release not handed to it', async () => {
    const holder = engine();
    const locks = engine();
    const key = locks.keyOf('cancel');
    const held = await holder.lock('cancel');
    const controller = new AbortController();
    const waiting = locks.lock('cancel', { signal: controller.signal });
    await until(async () => (await serverWaiters(key)).length === 1);
    const started = performance.now();
    controller.abort(new Error('user gave up'));
    const error = (await waiting.catch((e: unknown) => e)) as Error & { cause?: unknown };
    expect(error.name).toBe('AbortError');
    expect((error.cause as Error).message).toBe('user gave up');
    expect(performance.now() - started).toBeLessThan(2000);
    expect(await serverWaiters(key)).toEqual([]);
    await held.release();
    await sleep(100);
    expect(await advisoryLocks(admin, [key])).toEqual([]);
    // An already aborted signal: rejected before anything is sent.
    await expect(locks.lock('cancel', { signal: AbortSignal.abort() })).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('gives the lock to the waiter at once when the holder process is SIGKILLed', async () => {
    const holder = await agent();
    holder.send({ op: 'lock', id: 'h', name: 'crash' });
    await holder.on('granted', 'h');
    const locks = engine();
    const waiting = locks.lock('crash', { timeout: 20_000 });
    await until(async () => (await serverWaiters(locks.keyOf('crash'))).length === 1);
    const killed = performance.now();
    await holder.kill('SIGKILL');
    const handle = await waiting;
    expect(performance.now() - killed).toBeLessThan(2000);
    await handle.release();
  });

  it('lets a process that only holds a lock exit on its own; the server then drops the lock', async () => {
    const locks = engine();
    const script = `import { PgLocks } from '${root}/dist/pg.js';
      const locks = new PgLocks(process.argv[1], { namespace: ${JSON.stringify(OPTIONS.namespace)} });
      await locks.lock('exit');
      console.log('locked');`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, env.url], { stdio: 'pipe' });
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const code = await new Promise<number | null>((resolve) => child.on('exit', resolve));
    expect(out).toContain('locked');
    expect(code).toBe(0);
    const handle = await locks.lock('exit', { timeout: 5000 });
    await handle.release();
  });

  it('aborts the holder signal when its session is terminated; verify() turns false', async () => {
    const locks = engine();
    const handle = await locks.lock('terminated');
    const also = await locks.lock('terminated-2'); // same shared session
    await admin.query('SELECT pg_terminate_backend($1)', [handle.backendPid]);
    await until(async () => handle.signal.aborted, 5000);
    expect(handle.signal.reason).toBeInstanceOf(PgLockError);
    expect((handle.signal.reason as PgLockError).code).toBe('ERR_KERNEL_LOCK_PG_LOST');
    expect(handle.verify()).toBe(false);
    expect(also.signal.aborted).toBe(true);
    await handle.release(); // nothing to do, no error
    // The engine reconnects for the next lock.
    const again = await locks.lock('terminated', { timeout: 5000 });
    expect(again.backendPid).not.toBe(handle.backendPid);
    await again.release();
  });

  it('stays verified while held: heartbeats keep the session fresh past the loss deadline', async () => {
    const locks = engine({ deadPeerMs: 1000 });
    expect(locks.timings.lossDeadlineMs).toBe(600);
    const handle = await locks.lock('fresh');
    // A wait longer than the loss deadline: the grant is confirmed by a
    // fresh round trip before it is handed over, so it is not "lost" at once.
    const waiting = locks.lock('fresh', { timeout: 20_000 });
    await sleep(1500);
    expect(handle.verify()).toBe(true);
    expect(handle.signal.aborted).toBe(false);
    await handle.release();
    const waited = await waiting;
    await sleep(1000);
    expect(waited.verify()).toBe(true);
    expect(waited.signal.aborted).toBe(false);
    await waited.release();
  });

  it('detects a key collision: another name holding the same key is reported, never silently shared', async () => {
    const locks = await connected();
    const key = locks.keyOf('collide');
    // A session that holds this key in shared mode under another name: what
    // a real 64-bit digest collision would look like on the server.
    const { rows } = await admin.query<{ us: string; pid: number }>(
      `SELECT (extract(epoch FROM backend_start) * 1000000)::int8::text AS us, pid FROM pg_stat_activity WHERE pid = pg_backend_pid()`,
    );
    await admin.query('SELECT pg_advisory_lock_shared($1)', [key.toString()]);
    await admin.query(
      `INSERT INTO kernel_lock.owners (key, backend_pid, backend_start_us, namespace, name, mode, host, pid, owner, token, acquired_at)
       VALUES ($1, $2, $3, 'elsewhere', 'another name', 'shared', 'h', 1, NULL, 1, now())`,
      [key.toString(), rows[0]!.pid, rows[0]!.us],
    );
    try {
      const shared = await locks.lock('collide', { mode: 'shared' }).catch((e: unknown) => e);
      expect(shared).toBeInstanceOf(PgLockError);
      expect((shared as PgLockError).code).toBe('ERR_KERNEL_LOCK_PG_KEY_COLLISION');
      expect((shared as Error).message).toContain('elsewhere / another name');
      const timeout = (await locks.lock('collide', { timeout: 100 }).catch((e: unknown) => e)) as Error;
      expect(timeout.message).toContain('KEY COLLISION');
      expect((await locks.inspect('collide')).collisions).toEqual(['elsewhere / another name']);
      expect((await advisoryLocks(admin, [key])).filter((l) => l.pid !== rows[0]!.pid)).toEqual([]);
    } finally {
      await admin.query('SELECT pg_advisory_unlock_shared($1)', [key.toString()]);
      await admin.query('DELETE FROM kernel_lock.owners WHERE key = $1', [key.toString()]);
    }
  });

  it('trusts an owner record only while its session holds the key', async () => {
    const locks = engine();
    const key = locks.keyOf('stale');
    // A record left by a session that no longer holds anything (a crash).
    await admin.query(
      `INSERT INTO kernel_lock.owners (key, backend_pid, backend_start_us, namespace, name, mode, host, pid, owner, token, acquired_at)
       VALUES ($1, pg_backend_pid(), 0, $2, 'stale', 'exclusive', 'ghost', 1, NULL, 1, now())`,
      [key.toString(), OPTIONS.namespace],
    );
    const inspection = await locks.inspect('stale');
    expect(inspection.state).toBe('free');
    const handle = await locks.lock('stale');
    // An exclusive grant removes records of other sessions for its key.
    const { rows } = await admin.query('SELECT host FROM kernel_lock.owners WHERE key = $1', [key.toString()]);
    expect(rows).toEqual([{ host: os.hostname() }]);
    await handle.release();
    const after = await admin.query('SELECT 1 FROM kernel_lock.owners WHERE key = $1', [key.toString()]);
    expect(after.rows).toEqual([]);
  });

  it('rejects bad input before connecting, naming the option', async () => {
    expect(() => new PgLocks(env.url, { deadPeerMs: 10 })).toThrow(/deadPeerMs/);
    expect(() => new PgLocks(env.url, { bogus: 1 } as object)).toThrow(/unknown option "bogus"/);
    expect(() => new PgLocks({ connectionString: env.url, query_timeout: 1000 })).toThrow(/query_timeout is refused/);
    expect(() => new PgLocks({ connectionString: env.url, statement_timeout: 1000 })).toThrow(/statement_timeout/);
    expect(() => new PgLocks(env.url, { schema: 'Bad-Schema' })).toThrow(/identifier/);
    expect(() => new PgLocks(42 as unknown as string)).toThrow(/URL string/);
    const locks = new PgLocks('postgresql://nobody@127.0.0.1:1/none'); // never connects
    await expect(locks.lock('')).rejects.toThrow(/non-empty string/);
    await expect(locks.lock('a\0b')).rejects.toThrow(/NUL/);
    await expect(locks.lock('x', { mode: 'read' as 'shared' })).rejects.toThrow(/mode/);
    await expect(locks.lock('x', { timeout: -1 })).rejects.toThrow(/timeout/);
    await expect(locks.tryLock('x', { timeout: 5 } as object)).rejects.toThrow(/tryLock/);
    await expect(locks.lock('x', { kind: 'flock' } as object)).rejects.toThrow(/unknown option "kind"/);
    // A server that is not there: a connection error that says where.
    const error = (await locks.lock('x').catch((e: unknown) => e)) as PgLockError;
    expect(error.code).toBe('ERR_KERNEL_LOCK_PG_CONNECTION');
    expect(error.message).toContain('127.0.0.1:1');
    await locks.close();
    await expect(locks.lock('x')).rejects.toMatchObject({ code: 'ERR_KERNEL_LOCK_PG_CLOSED' });
  });

  it("bounds connecting by the lock's timeout: a server that accepts but never answers", async () => {
    const silent = net.createServer(() => {}); // accepts, says nothing
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as net.AddressInfo;
    const locks = new PgLocks(`postgresql://nobody@127.0.0.1:${port}/none`);
    const started = performance.now();
    const error = (await locks.lock('x', { timeout: 300 }).catch((e: unknown) => e)) as PgLockError;
    expect(performance.now() - started).toBeLessThan(3000);
    expect(error.code).toBe('ERR_KERNEL_LOCK_PG_CONNECTION');
    expect(error.message).toContain("within the lock's timeout");
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    await expect(locks.lock('x', { signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
    await locks.close();
    silent.close();
  });

  it('close() ends every session: the server drops their locks, holders are told', async () => {
    const locks = new PgLocks(env.url, OPTIONS);
    const a = await locks.lock('closing-a');
    const b = await locks.lock('closing-b');
    const blocker = engine();
    const held = await blocker.lock('closing-c');
    const waiting = locks.lock('closing-c', { timeout: 20_000 });
    await held.release();
    const c = await waiting; // held on a waiting session of its own
    await locks.close();
    expect(a.signal.aborted && b.signal.aborted && c.signal.aborted).toBe(true);
    expect((a.signal.reason as PgLockError).code).toBe('ERR_KERNEL_LOCK_PG_CLOSED');
    const keys = ['closing-a', 'closing-b', 'closing-c'].map((n) => blocker.keyOf(n));
    await until(async () => (await advisoryLocks(admin, keys)).length === 0);
  });
});
