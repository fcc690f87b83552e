// kernel-lock/session against the contract of the runtime's session lock
// module as published in openclaw 2026.4.24 (src/agents/session-write-lock.ts
// and src/agents/session-write-lock-error.ts): exports, defaults, the error
// class and code, and the test helpers the runtime's own tests call.
import { existsSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { readStartTime } from '../../src/proc/identity.js';
import { withHolder } from '../../src/session/error.js';
import * as session from '../../src/session/index.js';
import {
  __testing,
  acquireSessionWriteLock,
  createSessionWriteLockModule,
  drainSessionWriteLockStateForTest,
  isSessionWriteLockTimeoutError,
  resetSessionWriteLockStateForTest,
  SessionWriteLockTimeoutError,
} from '../../src/session/index.js';
import { rejection, tempDir } from '../helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-session-contract-'));
});
afterEach(() => {
  resetSessionWriteLockStateForTest();
  cleanup();
});

describe('exports', () => {
  it("has every export of the runtime's two modules", () => {
    // session-write-lock.ts (2026.4.24)
    for (const name of [
      '__testing',
      'acquireSessionWriteLock',
      'cleanStaleLockFiles',
      'drainSessionWriteLockStateForTest',
      'resetSessionWriteLockStateForTest',
      'resolveSessionLockMaxHoldFromTimeout',
    ]) {
      expect(session, name).toHaveProperty(name);
    }
    // session-write-lock-error.ts (2026.4.24)
    expect(typeof session.SessionWriteLockTimeoutError).toBe('function');
    expect(typeof session.isSessionWriteLockTimeoutError).toBe('function');
  });

  it("has the later generations' stale error exports (session-write-lock-error.ts since 2026.5)", () => {
    expect(typeof session.SessionWriteLockStaleError).toBe('function');
    expect(session.SESSION_WRITE_LOCK_STALE_CODE).toBe('OPENCLAW_SESSION_WRITE_LOCK_STALE');
    expect(typeof session.isSessionWriteLockStaleError).toBe('function');
    expect(typeof session.isSessionWriteLockAcquireError).toBe('function');
  });

  it('the returned lock has the 2026.4.24 release(), the fenced API of later generations and its lock name', async () => {
    const lock = await acquireSessionWriteLock({ sessionFile: path.join(dir, 'x.jsonl') });
    expect(Object.keys(lock).sort()).toEqual(
      [
        'assertCurrent',
        'assertOwned',
        'fencingToken',
        'lockName',
        'lockPath',
        'release',
        'signal',
        'write',
        'writeSync',
      ].sort(),
    );
    expect(lock.lockName).toBe(lock.lockPath); // on files; an `engine` names its own lock (test/pg/session.test.ts)
    await lock.release();
  });

  it('__testing has the runtime shape; kernel-lock installs no cleanup signal handlers', () => {
    expect(Object.keys(__testing).sort()).toEqual(
      ['cleanupSignals', 'handleTerminationSignal', 'releaseAllLocksSync', 'runLockWatchdogCheck'].sort(),
    );
    expect(__testing.cleanupSignals).toEqual([]);
  });
});

describe('SessionWriteLockTimeoutError', () => {
  it('has the runtime fields, name, code and message', () => {
    const error = new SessionWriteLockTimeoutError({
      timeoutMs: 10_000,
      owner: 'pid=4687',
      lockPath: '/s/x.jsonl.lock',
    });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('SessionWriteLockTimeoutError');
    expect(error.code).toBe('OPENCLAW_SESSION_WRITE_LOCK_TIMEOUT');
    expect(error.message).toBe('session file locked (timeout 10000ms): pid=4687 /s/x.jsonl.lock');
    expect({ ...error }).toEqual({
      code: 'OPENCLAW_SESSION_WRITE_LOCK_TIMEOUT',
      name: 'SessionWriteLockTimeoutError',
      timeoutMs: 10_000,
      owner: 'pid=4687',
      lockPath: '/s/x.jsonl.lock',
    });
  });

  it('isSessionWriteLockTimeoutError: instances and anything with the code, nothing else', () => {
    const error = new SessionWriteLockTimeoutError({ timeoutMs: 1, owner: 'unknown', lockPath: '/x' });
    expect(isSessionWriteLockTimeoutError(error)).toBe(true);
    expect(isSessionWriteLockTimeoutError({ code: 'OPENCLAW_SESSION_WRITE_LOCK_TIMEOUT' })).toBe(true);
    expect(isSessionWriteLockTimeoutError(new Error('session file locked (timeout 1ms): unknown /x'))).toBe(false);
    for (const value of [null, undefined, 0, 'OPENCLAW_SESSION_WRITE_LOCK_TIMEOUT', { code: 'ELOCKED' }]) {
      expect(isSessionWriteLockTimeoutError(value)).toBe(false);
    }
  });
});

describe('withHolder', () => {
  it("appends the holder to the message and keeps the stack's first line in step, read or not", () => {
    const holder = { pid: 7, command: null, owner: null, heldForMs: null, kind: 'kernel-lock' as const };
    for (const readStackFirst of [false, true]) {
      const error = new SessionWriteLockTimeoutError({ timeoutMs: 1, owner: 'pid=7', lockPath: '/x' });
      if (readStackFirst) expect(error.stack).toContain('(timeout 1ms): pid=7 /x\n');
      withHolder(error, { holder, detail: 'held by pid 7 (alive)' });
      expect(error.message).toBe('session file locked (timeout 1ms): pid=7 /x held by pid 7 (alive)');
      expect(error.stack?.split('\n')[0]).toBe(`SessionWriteLockTimeoutError: ${error.message}`);
      expect(error.pid).toBe(7);
      expect(Object.keys(error)).toContain('holder');
    }
  });
});

describe('createSessionWriteLockModule: the runtime’s own error class', () => {
  // What the `--import` hook does: the runtime's class is passed in, so its
  // `instanceof` checks (and its failover classifier) see its own error.
  class RuntimeTimeoutError extends Error {
    readonly code = 'OPENCLAW_SESSION_WRITE_LOCK_TIMEOUT';
    readonly timeoutMs: number;
    readonly owner: string;
    readonly lockPath: string;
    constructor(params: { timeoutMs: number; owner: string; lockPath: string }) {
      super(`session file locked (timeout ${params.timeoutMs}ms): ${params.owner} ${params.lockPath}`);
      this.name = 'SessionWriteLockTimeoutError';
      this.timeoutMs = params.timeoutMs;
      this.owner = params.owner;
      this.lockPath = params.lockPath;
    }
  }

  it('throws an instance of the given class, with the holder added', async () => {
    const runtime = createSessionWriteLockModule((params) => new RuntimeTimeoutError(params));
    const sessionFile = path.join(dir, 's.jsonl');
    const held = await runtime.acquireSessionWriteLock({ sessionFile });
    const error = await rejection(runtime.acquireSessionWriteLock({ sessionFile, timeoutMs: 200 }));
    expect(error).toBeInstanceOf(RuntimeTimeoutError);
    expect(error).not.toBeInstanceOf(SessionWriteLockTimeoutError);
    expect(error.name).toBe('SessionWriteLockTimeoutError');
    expect(error.code).toBe('OPENCLAW_SESSION_WRITE_LOCK_TIMEOUT');
    expect(
      error.message.startsWith(
        `session file locked (timeout 200ms): pid=${process.pid} ${sessionFile}.lock held by pid ${process.pid} (`,
      ),
    ).toBe(true);
    expect(error.pid).toBe(process.pid);
    expect(error.holder).toMatchObject({ pid: process.pid, kind: 'kernel-lock' });
    // A lock held through one module is the same lock for every other (one table per process).
    const joined = await acquireSessionWriteLock({ sessionFile, allowReentrant: true, timeoutMs: 1 });
    await joined.release();
    await held.release();
  });
});

describe('defaults', () => {
  it('staleMs: Infinity and other invalid values mean the default of 30 minutes, as in the runtime', async () => {
    // A live legacy writer's marker, 31 minutes old: honoured only under a staleMs above 31 min.
    const sessionFile = path.join(dir, 's.jsonl');
    const marker = {
      pid: process.pid,
      createdAt: new Date(Date.now() - 31 * 60_000).toISOString(),
      starttime: readStartTime('self'),
    };
    for (const staleMs of [Number.POSITIVE_INFINITY, 0, -1, Number.NaN, undefined]) {
      writeFileSync(`${sessionFile}.lock`, JSON.stringify(marker));
      const lock = await acquireSessionWriteLock({
        sessionFile,
        timeoutMs: 300,
        ...(staleMs === undefined ? {} : { staleMs }),
      });
      await lock.release();
    }
    writeFileSync(`${sessionFile}.lock`, JSON.stringify(marker));
    const error = await rejection(acquireSessionWriteLock({ sessionFile, timeoutMs: 300, staleMs: 40 * 60_000 }));
    expect(error.code).toBe('OPENCLAW_SESSION_WRITE_LOCK_TIMEOUT');
  });
});

describe('the test helpers', () => {
  it('runLockWatchdogCheck(nowMs) releases exactly the locks held past maxHoldMs at nowMs', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const short = await acquireSessionWriteLock({ sessionFile: path.join(dir, 'a.jsonl'), maxHoldMs: 60_000 });
      const long = await acquireSessionWriteLock({ sessionFile: path.join(dir, 'b.jsonl'), maxHoldMs: 600_000 });
      expect(await __testing.runLockWatchdogCheck(Date.now() + 30_000)).toBe(0);
      expect(await __testing.runLockWatchdogCheck(Date.now() + 61_000)).toBe(1);
      expect(short.signal.aborted).toBe(true);
      expect(long.signal.aborted).toBe(false);
      expect(existsSync(path.join(dir, 'a.jsonl.lock'))).toBe(false);
      expect(existsSync(path.join(dir, 'b.jsonl.lock'))).toBe(true);
      expect(String(stderr.mock.calls.at(-1)?.[0])).toMatch(
        /^\[session-write-lock\] releasing lock held for 6\d{4}ms \(max=60000ms\): .*a\.jsonl\.lock\n$/,
      );
      await short.release(); // a force-released handle's release is a no-op
      await long.release();
    } finally {
      stderr.mockRestore();
    }
  });

  it('releaseAllLocksSync, handleTerminationSignal, drain and reset release every held lock and abort its signal', async () => {
    const before = ['exit', 'SIGINT', 'SIGTERM'].map((e) => process.listenerCount(e));
    for (const release of [
      () => __testing.releaseAllLocksSync(),
      () => __testing.handleTerminationSignal('SIGTERM'),
      () => drainSessionWriteLockStateForTest(),
      () => resetSessionWriteLockStateForTest(),
    ]) {
      const a = await acquireSessionWriteLock({ sessionFile: path.join(dir, 'a.jsonl') });
      const b = await acquireSessionWriteLock({ sessionFile: path.join(dir, 'b.jsonl') });
      await release();
      for (const lock of [a, b]) {
        expect(lock.signal.aborted).toBe(true);
        expect(existsSync(lock.lockPath)).toBe(false);
      }
      // Free again: a new acquisition succeeds at once, and the old handles' release changes nothing.
      const again = await acquireSessionWriteLock({ sessionFile: path.join(dir, 'a.jsonl'), timeoutMs: 100 });
      await a.release();
      expect(existsSync(again.lockPath)).toBe(true);
      await again.release();
    }
    expect(['exit', 'SIGINT', 'SIGTERM'].map((e) => process.listenerCount(e))).toEqual(before); // no re-raise, no handlers
  });
});
