// kernel-lock/session on the PostgreSQL engine (`acquireSessionWriteLock({
// …, engine })`), for sessions shared across hosts, against the real test
// cluster: two processes contend for one transcript, one of them seeing the
// shared directory at another mount point; the timeout names the holder the
// server reports; pg_terminate_backend of the holder's backend makes its
// hold stale (write() refused) and grants the waiter a larger token;
// releases leave pg_locks empty; reentrancy; the watchdog; a wedged event loop.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type pg from 'pg';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect } from 'vitest';
import { kernelEngine } from '../../dist/index.js';
import { PgLocks } from '../../dist/pg.js';
import {
  acquireSessionWriteLock,
  resetSessionWriteLockStateForTest,
  SESSION_WRITE_LOCK_STALE_CODE,
  SESSION_WRITE_LOCK_TIMEOUT_CODE,
  SessionWriteLockStaleError,
  SessionWriteLockTimeoutError,
  sessionLockName,
} from '../../src/session/index.js';
import { sleep, tempDir } from '../helpers.js';
import { unshare } from '../privileges.js';
import { adminClient, advisoryLocks, pgIt as it, pgEnv, SessionAgent } from './helpers.js';

const env = pgEnv();
const ENGINE_OPTIONS = { deadPeerMs: 3000, namespace: `session-${process.pid}` };
let admin: pg.Client;
let keys: PgLocks; // computes keys only
const engines: PgLocks[] = [];
let dir: string;
let cleanup: () => void;

function engine(options: object = {}): PgLocks {
  const locks = new PgLocks(env.url, { ...ENGINE_OPTIONS, ...options });
  engines.push(locks);
  return locks;
}

const agents: SessionAgent[] = [];

/** A process holding (or trying to hold) the session on this cluster. */
function agent(
  sessionFile: string,
  options: object,
  extra: { transcript?: string; prefix?: string[] } = {},
): SessionAgent {
  const started = new SessionAgent(env.url, sessionFile, options, ENGINE_OPTIONS, extra);
  agents.push(started);
  return started;
}

async function until(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!(await check())) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** The server's view of a session's advisory lock: granted and waiting backends. */
async function serverView(lockName: string): Promise<{ granted: number[]; waiting: number[] }> {
  const rows = await advisoryLocks(admin, [keys.keyOf(lockName)]);
  return {
    granted: rows.filter((r) => r.granted).map((r) => r.pid),
    waiting: rows.filter((r) => !r.granted).map((r) => r.pid),
  };
}

async function rejection(promise: Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await promise;
  } catch (error) {
    return error as Error & Record<string, unknown>;
  }
  throw new Error('expected a rejection');
}

/** A session transcript under `base`, in the runtime's layout. */
function transcriptIn(base: string, id: string): string {
  const sessions = path.join(base, 'agents', 'main', 'sessions');
  mkdirSync(sessions, { recursive: true });
  return path.join(sessions, `${id}.jsonl`);
}

beforeAll(async () => {
  admin = await adminClient(env);
  keys = engine();
});

afterAll(async () => {
  for (const e of engines) await e.close();
  await admin?.end();
});

beforeEach(() => {
  ({ dir, cleanup } = tempDir('klpgsess-'));
});

afterEach(async () => {
  for (const a of agents.splice(0)) await a.kill();
  resetSessionWriteLockStateForTest();
  cleanup();
});

describe('kernel-lock/session on the PostgreSQL engine', () => {
  it('two hosts seeing one shared directory at different mount points exclude each other; the timeout names the holder the server reports', async () => {
    // Host A sees the shared directory at a bind mount of its own (a private
    // mount namespace); host B at the original path. Same transcript, two paths.
    const shared = path.join(dir, 'shared');
    const mountPoint = path.join(dir, 'host-a-mount');
    mkdirSync(mountPoint, { recursive: true });
    const onB = transcriptIn(shared, 'f0c1d2e3-shared');
    const onA = path.join(mountPoint, path.relative(shared, onB));
    const mount = [
      ...unshare('--mount', '--propagation', 'private'),
      'sh',
      '-c',
      'mount --bind "$0" "$1" && shift && exec "$@"',
      shared,
      mountPoint,
    ];
    const holder = agent(onA, { owner: 'host A agent', timeoutMs: 10_000 }, { prefix: mount });
    const locked = await holder.next('locked');
    expect(locked.lockName).toBe('session/f0c1d2e3-shared.jsonl');
    expect(sessionLockName(onB)).toBe(locked.lockName);
    expect((await serverView('session/f0c1d2e3-shared.jsonl')).granted).toHaveLength(1);

    const started = performance.now();
    const error = await rejection(acquireSessionWriteLock({ sessionFile: onB, engine: engine(), timeoutMs: 800 }));
    const waited = performance.now() - started;
    expect(error).toBeInstanceOf(SessionWriteLockTimeoutError);
    expect(error.code).toBe(SESSION_WRITE_LOCK_TIMEOUT_CODE);
    expect(waited).toBeGreaterThanOrEqual(700);
    expect(error.pid).toBe(locked.pid);
    expect(error.holder).toMatchObject({
      kind: 'engine',
      pid: locked.pid,
      host: os.hostname(),
      owner: 'host A agent',
      token: BigInt(locked.token as string),
    });
    expect(error.message).toContain(`session file locked (timeout 800ms): pid=${locked.pid} ${onB}.lock`);
    expect(error.message).toContain(
      `held by pid ${locked.pid} on host ${os.hostname()} through the pg engine (owner "host A agent"`,
    );
    expect((error.cause as { code?: string }).code).toBe('ELOCKED');
    // The engine is the truth: no lock file, no lease file, on either path.
    for (const file of [onA, onB]) {
      expect(existsSync(`${file}.lock`)).toBe(false);
      expect(existsSync(`${file}.lease`)).toBe(false);
    }
    // The failed wait left nothing on the server: still one holder, no waiter.
    expect(await serverView('session/f0c1d2e3-shared.jsonl')).toMatchObject({ waiting: [] });
    expect((await serverView('session/f0c1d2e3-shared.jsonl')).granted).toHaveLength(1);

    await holder.release();
    expect(await serverView('session/f0c1d2e3-shared.jsonl')).toEqual({ granted: [], waiting: [] });
    const after = await acquireSessionWriteLock({ sessionFile: onB, engine: engine(), timeoutMs: 2000 });
    expect(after.fencingToken).toBeGreaterThan(BigInt(locked.token as string));
    await after.release();
    expect(await serverView('session/f0c1d2e3-shared.jsonl')).toEqual({ granted: [], waiting: [] });
  });

  it("pg_terminate_backend of the holder's backend: its hold goes stale and write() is refused; the waiter is granted with a larger token", async () => {
    const sessionFile = transcriptIn(dir, 'terminated');
    const lockName = sessionLockName(sessionFile);
    const transcript = path.join(dir, 'fenced.log');
    const holder = agent(sessionFile, { timeoutMs: 10_000 }, { transcript });
    const locked = await holder.next('locked');
    await until('the holder writing', () => existsSync(transcript) && readFileSync(transcript, 'utf8').length > 0);

    const waiter = agent(sessionFile, { timeoutMs: 30_000 });
    await until('the waiter waiting on the server', async () => (await serverView(lockName)).waiting.length === 1);
    const [backend] = (await serverView(lockName)).granted;
    expect(backend).toBeTypeOf('number');
    await admin.query('SELECT pg_terminate_backend($1)', [backend]);

    const granted = await waiter.next('locked');
    expect(BigInt(granted.token as string)).toBeGreaterThan(BigInt(locked.token as string));
    const aborted = await holder.next('aborted');
    expect(aborted).toMatchObject({ code: SESSION_WRITE_LOCK_STALE_CODE, reasons: 'lease-lost,lost' });
    expect(aborted.message).toContain('lost by its lock engine');
    expect(await holder.next('refused')).toMatchObject({
      code: SESSION_WRITE_LOCK_STALE_CODE,
      reasons: 'lease-lost,lost',
    });
    expect(await holder.next('assert')).toMatchObject({
      code: SESSION_WRITE_LOCK_STALE_CODE,
      reasons: 'lease-lost,lost',
    });
    // Refused for good: the holder writes nothing more.
    const before = readFileSync(transcript, 'utf8');
    await sleep(300);
    expect(readFileSync(transcript, 'utf8')).toBe(before);
    expect(
      before
        .trim()
        .split('\n')
        .every((line) => line.startsWith(`${locked.token} `)),
    ).toBe(true);

    // The waiter holds the lock now, alone.
    const view = await serverView(lockName);
    expect(view.granted).toHaveLength(1);
    expect(view.granted[0]).not.toBe(backend);
    await waiter.release();
    expect(await serverView(lockName)).toEqual({ granted: [], waiting: [] });
  });

  it('a killed holder: the server drops its lock at once and the waiter is granted', async () => {
    const sessionFile = transcriptIn(dir, 'killed');
    const holder = agent(sessionFile, {});
    const locked = await holder.next('locked');
    const waiting = acquireSessionWriteLock({ sessionFile, engine: engine(), timeoutMs: 20_000 });
    await until(
      'the waiter waiting',
      async () => (await serverView(sessionLockName(sessionFile))).waiting.length === 1,
    );
    holder.child.kill('SIGKILL');
    const lock = await waiting;
    expect(lock.fencingToken).toBeGreaterThan(BigInt(locked.token as string));
    expect(() => lock.assertCurrent()).not.toThrow();
    expect(await lock.write(() => 'written')).toBe('written');
    await lock.release();
    expect(await serverView(sessionLockName(sessionFile))).toEqual({ granted: [], waiting: [] });
  });

  it('reentrancy is keyed by engine kind and lock name; without allowReentrant the second acquisition waits for the first', async () => {
    const locks = engine();
    const sessionFile = transcriptIn(dir, 'reentrant');
    const lockName = sessionLockName(sessionFile);
    const first = await acquireSessionWriteLock({ sessionFile, engine: locks, allowReentrant: true });
    // The same transcript seen at another path has the same lock name: joined.
    const elsewhere = transcriptIn(path.join(dir, 'other-mount'), 'reentrant');
    const second = await acquireSessionWriteLock({ sessionFile: elsewhere, engine: locks, allowReentrant: true });
    expect(second.fencingToken).toBe(first.fencingToken);
    expect(second.signal).toBe(first.signal);
    expect(second.lockName).toBe(lockName);
    expect((await serverView(lockName)).granted).toHaveLength(1);
    await first.release();
    expect((await serverView(lockName)).granted).toHaveLength(1); // the second acquisition still holds
    second.assertCurrent();
    await second.release();
    expect(await serverView(lockName)).toEqual({ granted: [], waiting: [] });
    expect(() => second.assertCurrent()).toThrow(SessionWriteLockStaleError);

    // Without allowReentrant, this process waits for itself like anyone else, and is told so.
    const held = await acquireSessionWriteLock({ sessionFile, engine: locks });
    const error = await rejection(acquireSessionWriteLock({ sessionFile, engine: locks, timeoutMs: 300 }));
    expect(error.code).toBe(SESSION_WRITE_LOCK_TIMEOUT_CODE);
    expect(error.holder).toMatchObject({ kind: 'engine', pid: process.pid, host: os.hostname() });
    // An explicit lockName is a lock of its own.
    const named = await acquireSessionWriteLock({
      sessionFile,
      engine: locks,
      lockName: 'tenant-7/reentrant',
      timeoutMs: 2000,
    });
    expect(named.lockName).toBe('tenant-7/reentrant');
    expect(named.fencingToken).not.toBe(held.fencingToken);
    await named.release();
    await held.release();
    expect(await serverView(lockName)).toEqual({ granted: [], waiting: [] });
    expect(await serverView('tenant-7/reentrant')).toEqual({ granted: [], waiting: [] });
  });

  it("maxHoldMs: the hold's own watchdog ends it on the server and fences it", async () => {
    const sessionFile = transcriptIn(dir, 'watchdog');
    const lockName = sessionLockName(sessionFile);
    const lock = await acquireSessionWriteLock({ sessionFile, engine: engine(), maxHoldMs: 300 });
    expect((await serverView(lockName)).granted).toHaveLength(1);
    await until('the watchdog', () => lock.signal.aborted, 10_000);
    expect((lock.signal.reason as SessionWriteLockStaleError).staleReasons).toEqual(['lease-lost', 'hold-exceeded']);
    await expect(lock.write(() => 'late')).rejects.toBeInstanceOf(SessionWriteLockStaleError);
    await until('the server to release', async () => (await serverView(lockName)).granted.length === 0);
    await lock.release();
  });

  it('a wedged event loop: once the engine can no longer vouch for the lock, assertCurrent() and write() refuse (fail closed)', async () => {
    // deadPeerMs 1000: the engine declares its locks lost 600 ms after the last answer it can count on.
    const locks = engine({ deadPeerMs: 1000 });
    const sessionFile = transcriptIn(dir, 'wedged');
    const lock = await acquireSessionWriteLock({ sessionFile, engine: locks });
    lock.assertCurrent();
    const end = performance.now() + 1200;
    while (performance.now() < end) {
      // the event loop is blocked: no heartbeat, no timer
    }
    expect(() => lock.assertCurrent()).toThrow(SessionWriteLockStaleError);
    let refused: unknown;
    try {
      lock.writeSync(() => 'late');
    } catch (error) {
      refused = error;
    }
    expect((refused as SessionWriteLockStaleError).staleReasons).toEqual(['lease-lost', 'lost']);
    await lock.release();
  });

  it('refuses before touching anything: the kernel engine (no token), fencing with an engine, lockName without one', async () => {
    const sessionFile = transcriptIn(dir, 'refused');
    await expect(acquireSessionWriteLock({ sessionFile, engine: kernelEngine() })).rejects.toThrow(/no fencing token/);
    await expect(acquireSessionWriteLock({ sessionFile, engine: engine(), fencing: true })).rejects.toThrow(
      /fencing .* is not available with the pg engine/,
    );
    await expect(acquireSessionWriteLock({ sessionFile, lockName: 'x' })).rejects.toThrow(
      /lockName names the lock of an `engine`/,
    );
    await expect(acquireSessionWriteLock({ sessionFile, engine: {} as unknown as PgLocks })).rejects.toThrow(
      /engine must be a LockEngine/,
    );
    expect(existsSync(`${sessionFile}.lock`)).toBe(false);
    expect(existsSync(`${sessionFile}.lease`)).toBe(false);
  });
});
