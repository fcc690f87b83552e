// kernel-lock/session's fenced API (the runtime's later generations, on top
// of the 2026.4.24 contract): fencingToken, assertCurrent()/assertOwned(),
// write()/writeSync(), SessionWriteLockStaleError, and maxHoldMs as a fence:
// the hold's own watchdog by default, supersession by a waiter with
// `fencing: true`. Real processes, real SIGKILL, a wedged event loop, a pid
// namespace.
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { inspectSync, parseRecord } from '../../src/index.js';
import {
  acquireSessionWriteLock,
  isSessionWriteLockAcquireError,
  isSessionWriteLockStaleError,
  resetSessionWriteLockStateForTest,
  SESSION_WRITE_LOCK_STALE_CODE,
  SessionWriteLockStaleError,
  SessionWriteLockTimeoutError,
} from '../../src/session/index.js';
import {
  fixture,
  legacyCreate,
  lineFrom,
  holdInChild as lockInChild,
  rejection,
  releaseInChild,
  sleep,
  tempDir,
} from '../helpers.js';
import { unshare } from '../privileges.js';

let dir: string;
let cleanup: () => void;
const children = new Set<ChildProcess>();
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kl-session-fencing-'));
});
afterEach(() => {
  for (const child of children) child.kill('SIGKILL');
  children.clear();
  resetSessionWriteLockStateForTest();
  cleanup();
});

/** Starts the fixture; `lines` collects its stdout lines. */
function start(
  args: string[],
  prefix: string[] = [],
): { child: ChildProcess; lines: string[]; exited: Promise<unknown> } {
  const command = [...prefix, process.execPath, fixture('session-fenced.mjs'), ...args];
  const child = spawn(command[0]!, command.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
  children.add(child);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const lines: string[] = [];
  let buffered = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop()!;
    lines.push(...parts);
  });
  return { child, lines, exited };
}

async function until(what: string, check: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** A child that holds the session; resolves with its fencing token once it holds. */
async function holdInChild(
  sessionFile: string,
  options: object,
  writes?: { transcript: string; interval: string },
  prefix: string[] = [],
): Promise<{ child: ChildProcess; lines: string[]; token: bigint; lockedAt: number; grantedAt: number }> {
  const args = ['hold', sessionFile, JSON.stringify(options)];
  if (writes) args.push(writes.transcript, writes.interval);
  const { child, lines } = start(args, prefix);
  const locked = await lineFrom(child, 'locked');
  const [, , token, grantedAt] = locked.split(' ');
  return { child, lines, token: BigInt(token!), lockedAt: performance.now(), grantedAt: Number(grantedAt) };
}

async function releaseChild(child: ChildProcess): Promise<void> {
  const released = lineFrom(child, 'released');
  child.stdin!.end();
  await released;
}

/** Checks that every transcript line from the first one of `token` on is `token`'s; returns that line's index. */
function expectNothingLate(transcript: string, token: bigint): number {
  const rows = readFileSync(transcript, 'utf8').trim().split('\n');
  const first = rows.findIndex((r) => r.startsWith(`${token} `));
  expect(first).toBeGreaterThanOrEqual(0);
  expect(rows.slice(first).every((r) => r.startsWith(`${token} `))).toBe(true);
  return first;
}

/** Runs `fn` with this process's stderr captured (the watchdog's and the successor's lines); returns them too. */
async function capturingStderr<T>(fn: () => Promise<T>): Promise<{ value: T; lines: string[] }> {
  const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
  try {
    const value = await fn();
    return { value, lines: stderr.mock.calls.map((c) => String(c[0])) };
  } finally {
    stderr.mockRestore();
  }
}

function staleOf(fn: () => unknown): SessionWriteLockStaleError {
  try {
    fn();
  } catch (error) {
    return error as SessionWriteLockStaleError;
  }
  throw new Error('expected a stale error');
}

describe('fencingToken', () => {
  it('strictly increases per session across releases, removed lock files, other processes, SIGKILL and restarts', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const lockPath = `${sessionFile}.lock`;
    const tokens: bigint[] = [];
    for (let i = 0; i < 3; i++) {
      const lock = await acquireSessionWriteLock({ sessionFile });
      expect(typeof lock.fencingToken).toBe('bigint');
      tokens.push(lock.fencingToken);
      await lock.release();
      // The runtime's lock file goes away on release (old-version processes need that)...
      expect(existsSync(lockPath)).toBe(false);
    }
    // ...and when it is removed by others: `rm -f sessions/*.lock`, or an old
    // version reclaiming a marker it judged stale and leaving its own.
    writeFileSync(lockPath, JSON.stringify({ pid: 999_999_999, createdAt: new Date().toISOString() }));
    rmSync(lockPath);
    for (let i = 0; i < 2; i++) {
      const { child, lines } = start(['token', sessionFile]);
      await until('the token line', () => lines.some((l) => l.startsWith('token ')));
      tokens.push(BigInt(lines.find((l) => l.startsWith('token '))!.split(' ')[1]!));
      child.kill('SIGKILL');
    }
    const killed = await holdInChild(sessionFile, {});
    tokens.push(killed.token);
    killed.child.kill('SIGKILL');
    // A restart: nothing survives but the files.
    const after = await acquireSessionWriteLock({ sessionFile, timeoutMs: 5_000 });
    tokens.push(after.fencingToken);
    await after.release();
    for (let i = 1; i < tokens.length; i++) expect(tokens[i]! > tokens[i - 1]!, `${tokens}`).toBe(true);
    expect(existsSync(`${sessionFile}.lease`)).toBe(true);
  });

  it('is shared by reentrant acquisitions of one hold', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const first = await acquireSessionWriteLock({ sessionFile });
    const joined = await acquireSessionWriteLock({ sessionFile, allowReentrant: true });
    expect(joined.fencingToken).toBe(first.fencingToken);
    await joined.release();
    first.assertCurrent();
    await first.release();
  });
});

describe('SessionWriteLockStaleError', () => {
  it("has the runtime's class shape, code and message", () => {
    const error = new SessionWriteLockStaleError({ owner: 'pid=42', lockPath: '/s/a.jsonl.lock', staleReasons: ['x'] });
    expect(error).toBeInstanceOf(Error);
    expect(error.name).toBe('SessionWriteLockStaleError');
    expect(error.code).toBe('OPENCLAW_SESSION_WRITE_LOCK_STALE');
    expect(SESSION_WRITE_LOCK_STALE_CODE).toBe('OPENCLAW_SESSION_WRITE_LOCK_STALE');
    expect(error.message).toBe('session file lock stale (x): pid=42 /s/a.jsonl.lock');
    expect(error).toMatchObject({ owner: 'pid=42', lockPath: '/s/a.jsonl.lock', staleReasons: ['x'] });
    expect(new SessionWriteLockStaleError({ owner: 'o', lockPath: 'p' }).staleReasons).toEqual(['unknown']);
  });

  it('is recognised by instance or by code, and counts as an acquire error like a timeout', () => {
    const stale = new SessionWriteLockStaleError({ owner: 'o', lockPath: 'p' });
    expect(isSessionWriteLockStaleError(stale)).toBe(true);
    expect(isSessionWriteLockStaleError({ code: 'OPENCLAW_SESSION_WRITE_LOCK_STALE' })).toBe(true);
    expect(isSessionWriteLockStaleError(new Error('x'))).toBe(false);
    expect(isSessionWriteLockAcquireError(stale)).toBe(true);
    expect(
      isSessionWriteLockAcquireError(new SessionWriteLockTimeoutError({ timeoutMs: 1, owner: 'o', lockPath: 'p' })),
    ).toBe(true);
    expect(isSessionWriteLockAcquireError(new Error('x'))).toBe(false);
  });
});

describe('assertCurrent() and assertOwned()', () => {
  it('pass while the hold is current and throw SessionWriteLockStaleError once it was released', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const lock = await acquireSessionWriteLock({ sessionFile });
    lock.assertCurrent();
    lock.assertOwned();
    await lock.release();
    for (const check of [() => lock.assertCurrent(), () => lock.assertOwned()]) {
      const error = staleOf(check);
      expect(error).toBeInstanceOf(SessionWriteLockStaleError);
      expect(error.code).toBe('OPENCLAW_SESSION_WRITE_LOCK_STALE');
      expect(error.staleReasons).toEqual(['lease-lost', 'released']);
      expect(error.fencingToken).toBe(lock.fencingToken);
      expect(error.lockPath).toBe(`${sessionFile}.lock`);
    }
    // An owner's own release is not a loss: the signal stays as it was.
    expect(lock.signal.aborted).toBe(false);
  });

  it('throw once the lease file was removed or replaced under the hold', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const lock = await acquireSessionWriteLock({ sessionFile });
    rmSync(`${sessionFile}.lease`);
    expect(staleOf(() => lock.assertCurrent()).staleReasons).toEqual(['lease-lost', 'replaced']);
    expect(lock.signal.aborted).toBe(true);
    await lock.release();
  });
});

describe('write() and writeSync()', () => {
  it('run the write while current and return its value; a stale hold refuses without running it', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const lock = await acquireSessionWriteLock({ sessionFile });
    expect(await lock.write(async () => 'async')).toBe('async');
    expect(lock.writeSync(() => 'sync')).toBe('sync');
    const own = new Error('the write itself failed');
    expect(await rejection(lock.write(() => Promise.reject(own)))).toBe(own);
    await lock.release();
    const ran = vi.fn();
    const refused = await rejection(lock.write(ran));
    expect(refused).toBeInstanceOf(SessionWriteLockStaleError);
    expect(staleOf(() => lock.writeSync(ran)).code).toBe(SESSION_WRITE_LOCK_STALE_CODE);
    expect(ran).not.toHaveBeenCalled();
  });
});

describe('write() and writeSync() hold the fence', () => {
  /** A takeover by another process that has started waiting; resolves with its grant time. */
  async function takeoverWaiting(sessionFile: string): Promise<() => Promise<number>> {
    const { lines } = start(['token', sessionFile]);
    await until('the other process to wait', () => inspectSync(`${sessionFile}.lease`).waiters > 0);
    return async () => {
      await until('the takeover', () => lines.some((l) => l.startsWith('token ')));
      return Number(lines.find((l) => l.startsWith('token '))!.split(' ')[2]);
    };
  }

  it('a takeover waits for a write() in progress', async () => {
    const sessionFile = path.join(dir, 'a.jsonl');
    const lock = await acquireSessionWriteLock({ sessionFile, fencing: true, maxHoldMs: 1_500 });
    const grantedAt = Date.now();
    const granted = await takeoverWaiting(sessionFile);
    let endedAt = 0;
    await lock.write(async () => {
      // From before the takeover moment to well after it.
      await sleep(Math.max(0, grantedAt + 2_500 - Date.now()));
      endedAt = Date.now();
    });
    expect(await granted()).toBeGreaterThanOrEqual(endedAt);
    await lock.release();
  }, 20_000);

  it('a takeover waits for a writeSync() in progress', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const lock = await acquireSessionWriteLock({ sessionFile, fencing: true, maxHoldMs: 1_500 });
    const grantedAt = Date.now();
    const granted = await takeoverWaiting(sessionFile);
    const endedAt = lock.writeSync(() => {
      while (Date.now() < grantedAt + 2_500) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 10);
      return Date.now();
    });
    expect(await granted()).toBeGreaterThanOrEqual(endedAt);
    await lock.release();
  }, 20_000);
});

describe('maxHoldMs without fencing: the hold’s own watchdog fences it', () => {
  it('aborts signal with SessionWriteLockStaleError (hold-exceeded); assertCurrent() and write() throw it', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const { value: lock, lines } = await capturingStderr(async () => {
      const held = await acquireSessionWriteLock({ sessionFile, maxHoldMs: 200 });
      await until('the watchdog', () => held.signal.aborted, 5_000);
      return held;
    });
    expect(lines.some((l) => l.startsWith('[session-write-lock] releasing lock held for'))).toBe(true);
    const reason = lock.signal.reason as SessionWriteLockStaleError;
    expect(reason).toBeInstanceOf(SessionWriteLockStaleError);
    expect(reason.staleReasons).toEqual(['lease-lost', 'hold-exceeded']);
    expect(staleOf(() => lock.assertCurrent())).toBe(reason);
    expect(await rejection(lock.write(() => undefined))).toBe(reason);
    const next = await acquireSessionWriteLock({ sessionFile, timeoutMs: 1_000 });
    expect(next.fencingToken > lock.fencingToken).toBe(true);
    await next.release();
  });
});

describe('maxHoldMs with fencing: true: a waiter supersedes the hold', () => {
  it('fencing must be a boolean, checked before anything is created', async () => {
    const sessionFile = path.join(dir, 'v', 's.jsonl');
    for (const fencing of ['yes', 1, null]) {
      const error = await rejection(acquireSessionWriteLock({ sessionFile, fencing: fencing as unknown as boolean }));
      expect(error).toBeInstanceOf(TypeError);
      expect(error.message).toBe(`kernel-lock/session: fencing must be a boolean, got ${JSON.stringify(fencing)}`);
    }
    expect(existsSync(path.join(dir, 'v'))).toBe(false);
  });

  it('supersedes a live holder in another process that keeps writing; none of its writes lands after the successor’s first', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const lockPath = `${sessionFile}.lock`;
    const transcript = path.join(dir, 'transcript.txt');
    const old = await holdInChild(sessionFile, { fencing: true, maxHoldMs: 400 }, { transcript, interval: '5' });
    const { value: lock, lines: written } = await capturingStderr(() =>
      acquireSessionWriteLock({ sessionFile, timeoutMs: 15_000, fencing: true, maxHoldMs: 60_000 }),
    );
    // Not before the holder's maxHoldMs, counted from its grant (its line follows the grant by a few ms).
    const waited = Date.now() - old.grantedAt;
    expect(waited).toBeGreaterThan(300);
    expect(waited).toBeLessThan(10_000);
    expect(lock.fencingToken > old.token).toBe(true);
    const line = written.find((l) => l.includes('superseded lock'));
    expect(line).toMatch(
      new RegExp(
        `^\\[session-write-lock\\] superseded lock held for \\d+m?s past its maxHoldMs by pid ${old.child.pid}: `,
      ),
    );
    expect(line).toContain(`(fencing token ${old.token} -> ${lock.fencingToken};`);
    for (let seq = 0; seq < 5; seq++) {
      await lock.write(() => writeFileSync(transcript, `${lock.fencingToken} new ${process.pid}\n`, { flag: 'a' }));
      await sleep(10);
    }
    await until('the old holder to be refused and told', () =>
      ['refused', 'assert', 'aborted'].every((p) => old.lines.some((l) => l.startsWith(p))),
    );
    for (const prefix of ['refused', 'assert', 'aborted']) {
      expect(old.lines.find((l) => l.startsWith(prefix))).toBe(
        `${prefix} OPENCLAW_SESSION_WRITE_LOCK_STALE lease-lost,superseded`,
      );
    }
    // The runtime's lock file names the successor, and the old holder's release leaves it alone.
    expect(parseRecord(readFileSync(lockPath))?.pid).toBe(process.pid);
    expect(legacyCreate(lockPath)).toBe('exists');
    await releaseChild(old.child);
    expect(parseRecord(readFileSync(lockPath))?.pid).toBe(process.pid);
    lock.assertCurrent();
    expect(expectNothingLate(transcript, lock.fencingToken)).toBeGreaterThan(0); // the old holder did write before
    await lock.release();
    expect(existsSync(lockPath)).toBe(false);
    expect(legacyCreate(lockPath)).toBe('created');
  }, 30_000);

  it('supersedes a wedged holder (its event loop blocked: its own watchdog cannot run); without fencing nobody does', async () => {
    const sessionFile = path.join(dir, 'w.jsonl');
    const transcript = path.join(dir, 'transcript.txt');
    const wedged = await holdInChild(sessionFile, { maxHoldMs: 200 }, { transcript, interval: 'wedged:3000' });
    // A waiter's own `fencing` and maxHoldMs change nothing: supersession is the holder's choice.
    const error = await rejection(
      acquireSessionWriteLock({ sessionFile, timeoutMs: 1_500, fencing: true, maxHoldMs: 1 }),
    );
    expect(error).toBeInstanceOf(SessionWriteLockTimeoutError);
    expect(error.pid).toBe(wedged.child.pid);
    wedged.child.kill('SIGKILL');

    const fenced = await holdInChild(
      sessionFile,
      { fencing: true, maxHoldMs: 200 },
      { transcript, interval: 'wedged:3000' },
    );
    const { value: lock } = await capturingStderr(() => acquireSessionWriteLock({ sessionFile, timeoutMs: 10_000 }));
    expect(performance.now() - fenced.lockedAt).toBeLessThan(2_500); // before the wedge ends
    await until('the wedged write', () => fenced.lines.some((l) => l.startsWith('wedge-write')));
    expect(fenced.lines.find((l) => l.startsWith('wedge-write'))).toBe(
      'wedge-write OPENCLAW_SESSION_WRITE_LOCK_STALE lease-lost,superseded',
    );
    expect(existsSync(transcript)).toBe(false);
    await lock.release();
  }, 30_000);

  it('fences a holder in another pid namespace the same way', async () => {
    const sessionFile = path.join(dir, 'n.jsonl');
    const transcript = path.join(dir, 'transcript.txt');
    const other = await holdInChild(
      sessionFile,
      { fencing: true, maxHoldMs: 300 },
      { transcript, interval: '10' },
      unshare('--pid', '--fork', '--mount-proc', '--kill-child=SIGKILL'),
    );
    const { value: lock } = await capturingStderr(() => acquireSessionWriteLock({ sessionFile, timeoutMs: 10_000 }));
    expect(lock.fencingToken > other.token).toBe(true);
    await lock.write(() => writeFileSync(transcript, `${lock.fencingToken} new\n`, { flag: 'a' }));
    await until('the other namespace’s holder to be refused', () => other.lines.some((l) => l.startsWith('refused')));
    expect(other.lines.find((l) => l.startsWith('refused'))).toBe(
      'refused OPENCLAW_SESSION_WRITE_LOCK_STALE lease-lost,superseded',
    );
    expectNothingLate(transcript, lock.fencingToken);
    await lock.release();
  }, 30_000);
});

describe('reentrancy and supersession', () => {
  it('a reentrant acquisition never joins a hold that was superseded', async () => {
    const sessionFile = path.join(dir, 'r.jsonl');
    const old = await acquireSessionWriteLock({ sessionFile, fencing: true, maxHoldMs: 100 });
    // Another process supersedes it.
    const { lines, exited } = start(['token', sessionFile]);
    await until('the other process', () => lines.some((l) => l.startsWith('token ')));
    await exited;
    await until('the notice', () => old.signal.aborted, 5_000);
    const joined = await acquireSessionWriteLock({ sessionFile, allowReentrant: true, timeoutMs: 2_000 });
    expect(joined.fencingToken > old.fencingToken).toBe(true);
    joined.assertCurrent();
    await joined.release();
    await old.release();
  });
});

describe('the lock file (`.jsonl.lock`) beside the lease', () => {
  it('waits for a plain flock holder of it (an earlier kernel-lock version), names it, and leaves no lease held', async () => {
    const sessionFile = path.join(dir, 'm.jsonl');
    const lockPath = `${sessionFile}.lock`;
    const earlier = await lockInChild(lockPath, { removeOnRelease: true });
    children.add(earlier.child);
    const error = await rejection(acquireSessionWriteLock({ sessionFile, timeoutMs: 500 }));
    expect(error).toBeInstanceOf(SessionWriteLockTimeoutError);
    expect(error.pid).toBe(earlier.pid);
    // The lease taken before the wait was given back: another process gets the session as soon as the flock is free.
    await releaseInChild(earlier);
    const { lines } = start(['token', sessionFile]);
    await until('the other process', () => lines.some((l) => l.startsWith('token ')), 5_000);
    const lock = await acquireSessionWriteLock({ sessionFile, timeoutMs: 2_000 });
    expect(parseRecord(readFileSync(lockPath))?.pid).toBe(process.pid);
    await lock.release();
    expect(existsSync(lockPath)).toBe(false);
  });
});
