// kernel-lock/session: the runtime's session write lock contract, point by
// point, with real processes, real SIGKILL and real pid namespaces.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { acquireLegacySessionWriteLock } from '../../src/demo/legacy-marker.js';
import { parseRecord, tryLockSync } from '../../src/index.js';
import { readStartTime } from '../../src/proc/identity.js';
import {
  __testing,
  acquireSessionWriteLock,
  cleanStaleLockFiles,
  resolveSessionLockMaxHoldFromTimeout,
  SessionWriteLockTimeoutError,
} from '../../src/session/index.js';
import { fdCount, fixture, type Holder, sleep, spawnHolder, tempDir } from '../helpers.js';
import { unshare } from '../privileges.js';

let dir: string;
let cleanup: () => void;
const holders: Holder[] = [];
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-session-'));
});
afterEach(async () => {
  for (const h of holders.splice(0)) await h.kill('SIGKILL');
  cleanup();
});

/** A child process holding the session lock through dist/session.js. */
async function holdSession(sessionFile: string, options: object = {}): Promise<Holder> {
  const h = await spawnHolder(process.execPath, [fixture('session-holder.mjs'), sessionFile, JSON.stringify(options)]);
  holders.push(h);
  return h;
}

/** The same, inside a new pid namespace (another container sharing the directory). */
async function holdSessionInNamespace(sessionFile: string): Promise<Holder> {
  const [command, ...flags] = unshare('--pid', '--fork', '--mount-proc', '--kill-child=SIGKILL');
  const h = await spawnHolder(command!, [...flags, process.execPath, fixture('session-holder.mjs'), sessionFile]);
  holders.push(h);
  return h;
}

/** True when some other open file description holds the lock (a non-blocking probe that changes nothing). */
function heldByOthers(lockPath: string): boolean {
  const probe = tryLockSync(lockPath, { mode: 'shared', removeOnRelease: false });
  if (probe === null) return true;
  probe.releaseSync();
  return false;
}

async function rejection(promise: Promise<unknown>): Promise<SessionWriteLockTimeoutError> {
  try {
    await promise;
  } catch (error) {
    return error as SessionWriteLockTimeoutError;
  }
  throw new Error('expected a rejection');
}

describe('acquireSessionWriteLock: lock file', () => {
  it('locks <realpath(dir)>/<basename>.lock, creating the directory, and removes the file at release', async () => {
    const sessionFile = path.join(dir, 'agents', 'main', 'sessions', 's.jsonl');
    const lock = await acquireSessionWriteLock({ sessionFile });
    const lockPath = path.join(dir, 'agents', 'main', 'sessions', 's.jsonl.lock');
    expect(lock.lockPath).toBe(lockPath);
    expect(existsSync(lockPath)).toBe(true);
    expect(parseRecord(readFileSync(lockPath))).toMatchObject({ format: 'kernel-lock/1', pid: process.pid });
    await lock.release();
    expect(existsSync(lockPath)).toBe(false);
    await lock.release(); // idempotent
  });

  it('symlinked directories share one lock', async () => {
    const real = path.join(dir, 'real');
    mkdirSync(real);
    symlinkSync(real, path.join(dir, 'link'));
    const holder = await holdSession(path.join(real, 's.jsonl'));
    const error = await rejection(
      acquireSessionWriteLock({ sessionFile: path.join(dir, 'link', 's.jsonl'), timeoutMs: 300 }),
    );
    expect(error).toBeInstanceOf(SessionWriteLockTimeoutError);
    expect(error.lockPath).toBe(path.join(real, 's.jsonl.lock'));
    expect(error.pid).toBe(holder.pid);
  });
});

describe('acquireSessionWriteLock: timeouts and the error', () => {
  it('fails with the legacy message prefix, then names the holder', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const holder = await holdSession(sessionFile, { owner: 'agent main' });
    const lockPath = `${sessionFile}.lock`;
    const fds = fdCount();
    const started = performance.now();
    const error = await rejection(acquireSessionWriteLock({ sessionFile, timeoutMs: 300 }));
    expect(fdCount()).toBe(fds); // a failed acquisition leaves no descriptor behind
    expect(performance.now() - started).toBeGreaterThanOrEqual(250);
    expect(error).toBeInstanceOf(SessionWriteLockTimeoutError);
    expect(error.name).toBe('SessionWriteLockTimeoutError');
    expect(error.code).toBe('OPENCLAW_SESSION_WRITE_LOCK_TIMEOUT');
    expect(error.timeoutMs).toBe(300);
    expect(error.lockPath).toBe(lockPath);
    expect(error.owner).toBe(`pid=${holder.pid}`);
    const prefix = `session file locked (timeout 300ms): pid=${holder.pid} ${lockPath}`;
    expect(error.message.startsWith(prefix)).toBe(true);
    const detail = error.message.slice(prefix.length);
    expect(detail).toMatch(
      new RegExp(
        `^ held by pid ${holder.pid} \\(alive, ".*session-holder\\.mjs.*", owner "agent main", held \\d+ms\\)$`,
      ),
    );
    // The same facts, structured: pid, command, owner, age.
    expect(error.pid).toBe(holder.pid);
    expect(error.holder).toMatchObject({ pid: holder.pid, owner: 'agent main', kind: 'kernel-lock' });
    expect(error.holder?.command).toContain('session-holder.mjs');
    expect(error.holder?.heldForMs).toBeGreaterThanOrEqual(250);
    expect(error.holder?.heldForMs).toBeLessThan(60_000);
    expect(error.stack?.startsWith(`SessionWriteLockTimeoutError: ${error.message}\n`)).toBe(true);
    expect((error.cause as Error).name).toBe('LockTimeoutError'); // the core's error, with its inspection
    expect(heldByOthers(lockPath)).toBe(true); // the failed attempt left the holder alone
  });

  it('names a holder in another pid namespace by the pid this namespace sees, and its command', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const holder = await holdSessionInNamespace(sessionFile);
    const error = await rejection(acquireSessionWriteLock({ sessionFile, timeoutMs: 300 }));
    // The record says pid 1 (its own namespace); the kernel names the pid we can act on.
    expect(parseRecord(readFileSync(`${sessionFile}.lock`))?.pid).toBe(1);
    expect(error.pid).not.toBe(1);
    expect(error.pid).not.toBe(holder.pid); // not `unshare` itself: its child, in our numbering
    expect(readFileSync(`/proc/${error.pid}/cmdline`, 'utf8')).toContain('session-holder.mjs');
    expect(error.holder?.command).toContain('session-holder.mjs');
    expect(error.message).toContain(`: pid=${error.pid} `);
  });

  it('invalid timeouts fall back to the default of 10 000 ms', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    await holdSession(sessionFile);
    const attempts = [undefined, Number.NaN, -5, 0, '100' as unknown as number].map((timeoutMs) =>
      rejection(acquireSessionWriteLock({ sessionFile, ...(timeoutMs === undefined ? {} : { timeoutMs }) })),
    );
    const started = performance.now();
    const errors = await Promise.all(attempts);
    expect(performance.now() - started).toBeGreaterThanOrEqual(9_500);
    for (const error of errors) {
      expect(error).toBeInstanceOf(SessionWriteLockTimeoutError);
      expect(error.timeoutMs).toBe(10_000);
      expect(error.message).toMatch(/^session file locked \(timeout 10000ms\): pid=\d+ /);
    }
  }, 30_000);

  it('Infinity waits until the holder dies, however long', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const holder = await holdSession(sessionFile);
    let settled = false;
    const waiting = acquireSessionWriteLock({ sessionFile, timeoutMs: Number.POSITIVE_INFINITY }).finally(() => {
      settled = true;
    });
    await sleep(1_500);
    expect(settled).toBe(false);
    await holder.kill('SIGKILL');
    const lock = await waiting;
    await lock.release();
  });

  it('staleMs never makes a held lock stale', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    await holdSession(sessionFile);
    await sleep(50);
    const error = await rejection(acquireSessionWriteLock({ sessionFile, timeoutMs: 300, staleMs: 1 }));
    expect(error).toBeInstanceOf(SessionWriteLockTimeoutError);
  });

  it('installs no signal or exit handlers', async () => {
    const events = ['exit', 'SIGINT', 'SIGTERM', 'SIGQUIT', 'SIGABRT', 'SIGHUP'] as const;
    const before = events.map((e) => process.listenerCount(e));
    const lock = await acquireSessionWriteLock({ sessionFile: path.join(dir, 's.jsonl') });
    expect(events.map((e) => process.listenerCount(e))).toEqual(before);
    await lock.release();
    expect(events.map((e) => process.listenerCount(e))).toEqual(before);
  });
});

describe('acquireSessionWriteLock: reentrancy', () => {
  it('is off by default (2026.4.22+): a second acquisition in the same process waits and times out', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const first = await acquireSessionWriteLock({ sessionFile });
    const error = await rejection(acquireSessionWriteLock({ sessionFile, timeoutMs: 300 }));
    expect(error).toBeInstanceOf(SessionWriteLockTimeoutError);
    expect(error.owner).toBe(`pid=${process.pid}`);
    const explicit = await rejection(acquireSessionWriteLock({ sessionFile, allowReentrant: false, timeoutMs: 300 }));
    expect(explicit.owner).toBe(`pid=${process.pid}`);
    const waiting = acquireSessionWriteLock({ sessionFile, timeoutMs: 5_000 });
    await sleep(100);
    await first.release();
    const second = await waiting; // woken by the release, not by polling
    await second.release();
  });

  it('allowReentrant true shares the lock in-process and keeps it until the last release', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const lockPath = `${sessionFile}.lock`;
    const first = await acquireSessionWriteLock({ sessionFile });
    const second = await acquireSessionWriteLock({ sessionFile, allowReentrant: true, timeoutMs: 200 });
    const third = await acquireSessionWriteLock({ sessionFile, allowReentrant: true, timeoutMs: 200 });
    await second.release();
    await second.release(); // a second release of the same acquisition does not count twice
    expect(heldByOthers(lockPath)).toBe(true);
    await first.release();
    expect(heldByOthers(lockPath)).toBe(true);
    expect(existsSync(lockPath)).toBe(true);
    await third.release();
    expect(existsSync(lockPath)).toBe(false);
    expect(heldByOthers(lockPath)).toBe(false);
  });
});

describe('acquireSessionWriteLock: maxHoldMs watchdog', () => {
  it("force-releases with the runtime's stderr line; the stale handle cannot touch the next holder", async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const lockPath = `${sessionFile}.lock`;
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      const stale = await acquireSessionWriteLock({ sessionFile, maxHoldMs: 300 });
      expect(stale.signal.aborted).toBe(false);
      const next = await acquireSessionWriteLock({ sessionFile, timeoutMs: 5_000 });
      expect(stale.signal.aborted).toBe(true);
      const lines = stderr.mock.calls.map((c) => String(c[0])).filter((l) => l.includes(lockPath));
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(/^\[session-write-lock\] releasing lock held for \d+ms \(max=300ms\): /);
      expect(lines[0]!.endsWith(`: ${lockPath}\n`)).toBe(true);
      await stale.release(); // must not release `next`
      expect(existsSync(lockPath)).toBe(true);
      expect(next.signal.aborted).toBe(false);
      const error = await rejection(acquireSessionWriteLock({ sessionFile, timeoutMs: 200 }));
      expect(error).toBeInstanceOf(SessionWriteLockTimeoutError);
      // A reentrant acquisition now joins `next`, not the dead hold.
      const joined = await acquireSessionWriteLock({ sessionFile, allowReentrant: true, timeoutMs: 200 });
      await joined.release();
      await next.release();
      expect(existsSync(lockPath)).toBe(false);
    } finally {
      stderr.mockRestore();
    }
  });

  it('invalid maxHoldMs values mean the default of 5 minutes', async () => {
    const stderr = vi.spyOn(process.stderr, 'write').mockImplementation(() => true);
    try {
      for (const maxHoldMs of [0, -1, Number.NaN, Number.POSITIVE_INFINITY]) {
        const sessionFile = path.join(dir, `s${String(maxHoldMs)}.jsonl`);
        const lock = await acquireSessionWriteLock({ sessionFile, maxHoldMs });
        // Not released at 4 minutes, released past 5.
        expect(await __testing.runLockWatchdogCheck(Date.now() + 4 * 60_000)).toBe(0);
        expect(await __testing.runLockWatchdogCheck(Date.now() + 5 * 60_000 + 1_000)).toBe(1);
        expect(lock.signal.aborted).toBe(true);
      }
    } finally {
      stderr.mockRestore();
    }
  });
});

describe('resolveSessionLockMaxHoldFromTimeout', () => {
  it('is max(minMs, timeoutMs + graceMs), capped, with the runtime defaults', () => {
    expect(resolveSessionLockMaxHoldFromTimeout({ timeoutMs: 10_000 })).toBe(5 * 60_000);
    expect(resolveSessionLockMaxHoldFromTimeout({ timeoutMs: 300_000 })).toBe(420_000);
    expect(resolveSessionLockMaxHoldFromTimeout({ timeoutMs: 1_000, graceMs: 500, minMs: 100 })).toBe(1_500);
    expect(resolveSessionLockMaxHoldFromTimeout({ timeoutMs: Number.POSITIVE_INFINITY })).toBe(2_147_000_000);
    expect(resolveSessionLockMaxHoldFromTimeout({ timeoutMs: 3e9 })).toBe(2_147_000_000);
    expect(resolveSessionLockMaxHoldFromTimeout({ timeoutMs: -1 })).toBe(5 * 60_000 + 2 * 60_000);
  });
});

describe('migration from the legacy marker', () => {
  const deadPid = (): number => {
    const child = spawn('true');
    return child.pid!;
  };

  it.each([
    ['{}', () => '{}'],
    ['garbage', () => '\u0000\u0001not json at all {{{'],
  ])('a lock file with %s (not a record or marker) never blocks, and is left as it is', async (_name, content) => {
    const sessionFile = path.join(dir, 's.jsonl');
    const text = content();
    writeFileSync(`${sessionFile}.lock`, text);
    const lock = await acquireSessionWriteLock({ sessionFile, timeoutMs: 300 });
    await lock.release();
    // Not ours to rewrite or remove (issue 10): locked, nothing written.
    expect(readFileSync(`${sessionFile}.lock`, 'utf8')).toBe(text);
  });

  it.each([
    [
      'a dead pid',
      () => JSON.stringify({ pid: deadPid(), createdAt: new Date().toISOString(), starttime: 1 }, null, 2),
    ],
    [
      'a live pid with another start time',
      () => JSON.stringify({ pid: process.pid, createdAt: new Date().toISOString(), starttime: 1 }, null, 2),
    ],
  ])('a legacy marker with %s never blocks, and is overwritten', async (_name, content) => {
    const sessionFile = path.join(dir, 's.jsonl');
    const text = content();
    await sleep(100); // let a "dead pid" exit
    writeFileSync(`${sessionFile}.lock`, text);
    const lock = await acquireSessionWriteLock({ sessionFile, timeoutMs: 300 });
    expect(parseRecord(readFileSync(`${sessionFile}.lock`))).toMatchObject({
      format: 'kernel-lock/1',
      pid: process.pid,
    });
    await lock.release();
  });

  it('respect-live honours a live legacy writer, polls, and takes the lock when it lets go', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const lockPath = `${sessionFile}.lock`;
    const old = spawn('sleep', ['30']);
    try {
      const starttime = readStartTime(old.pid!);
      writeFileSync(
        lockPath,
        JSON.stringify({ pid: old.pid, createdAt: new Date().toISOString(), starttime }, null, 2),
      );
      const error = await rejection(acquireSessionWriteLock({ sessionFile, timeoutMs: 300 }));
      expect(error).toBeInstanceOf(SessionWriteLockTimeoutError);
      expect(error.message.startsWith(`session file locked (timeout 300ms): pid=${old.pid} ${lockPath}`)).toBe(true);
      expect(error.message).toContain('legacy marker');
      expect(readFileSync(lockPath, 'utf8')).toContain(`"pid": ${old.pid}`); // untouched
      const waiting = acquireSessionWriteLock({ sessionFile, timeoutMs: 5_000 });
      await sleep(300);
      old.kill('SIGKILL'); // the old process dies; its marker stays behind
      const lock = await waiting;
      await lock.release();
    } finally {
      old.kill('SIGKILL');
    }
  });

  it('respect-live waits for the real legacy protocol to release, and the legacy protocol respects kernel-lock', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const legacy = await acquireLegacySessionWriteLock({ sessionFile, cleanupHandlers: false });
    const waiting = acquireSessionWriteLock({ sessionFile, allowReentrant: false, timeoutMs: 5_000 });
    await sleep(300);
    await legacy.release();
    const lock = await waiting;
    // An old-version process now sees our record (pid, createdAt, starttime) and waits for us.
    await expect(
      acquireLegacySessionWriteLock({ sessionFile, timeoutMs: 300, allowReentrant: false, cleanupHandlers: false }),
    ).rejects.toThrow(`session file locked (timeout 300ms): pid=${process.pid}`);
    await lock.release();
  });

  it('respect-live stops honouring a live legacy marker older than staleMs, as legacy processes do', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const hourAgo = new Date(Date.now() - 3600_000).toISOString();
    const marker = JSON.stringify({ pid: process.pid, createdAt: hourAgo, starttime: readStartTime('self') });
    writeFileSync(`${sessionFile}.lock`, marker);
    const error = await rejection(acquireSessionWriteLock({ sessionFile, timeoutMs: 200, staleMs: 2 * 3600_000 }));
    expect(error.owner).toBe(`pid=${process.pid}`);
    const lock = await acquireSessionWriteLock({ sessionFile, timeoutMs: 200 }); // default staleMs: 30 min
    await lock.release();
  });

  it("legacyMarkers 'ignore' does not honour a live legacy marker", async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    writeFileSync(
      `${sessionFile}.lock`,
      JSON.stringify({ pid: process.pid, createdAt: new Date().toISOString(), starttime: readStartTime('self') }),
    );
    const lock = await acquireSessionWriteLock({ sessionFile, timeoutMs: 300, legacyMarkers: 'ignore' });
    await lock.release();
  });

  it('a kernel-lock record is never honoured without a kernel lock', async () => {
    const sessionFile = path.join(dir, 's.jsonl');
    const lockPath = `${sessionFile}.lock`;
    // A live process's record, as left by a holder whose lock is gone.
    const record = {
      format: 'kernel-lock/1',
      pid: process.pid,
      starttime: readStartTime('self'),
      createdAt: new Date().toISOString(),
    };
    writeFileSync(lockPath, JSON.stringify(record));
    const lock = await acquireSessionWriteLock({ sessionFile, timeoutMs: 300 });
    await lock.release();
  });

  it('rejects an unknown legacyMarkers policy', async () => {
    await expect(
      acquireSessionWriteLock({ sessionFile: path.join(dir, 's.jsonl'), legacyMarkers: 'steal' as 'ignore' }),
    ).rejects.toThrow(TypeError);
  });
});

describe('cleanStaleLockFiles', () => {
  it('removes only files no kernel lock is held on, whatever their records say', async () => {
    const sessions = path.join(dir, 'sessions');
    mkdirSync(sessions);
    const file = (name: string) => path.join(sessions, name);
    // Held, in this pid namespace and in another one (whose recorded pid 1 is alive here with another start time).
    const here = await holdSession(file('held-here.jsonl'));
    const elsewhere = await holdSessionInNamespace(file('held-elsewhere.jsonl'));
    expect(parseRecord(readFileSync(file('held-elsewhere.jsonl.lock')))?.pid).toBe(1);
    // Orphans: a kernel-lock record of a SIGKILLed holder, and legacy leftovers.
    const victim = await holdSession(file('killed.jsonl'));
    await victim.kill('SIGKILL');
    writeFileSync(file('empty-object.jsonl.lock'), '{}');
    writeFileSync(file('garbage.jsonl.lock'), 'garbage\n');
    writeFileSync(file('unrelated.lock'), '{}');
    const warnings: string[] = [];
    const later = Date.now() + 24 * 3600_000; // everything is "too old": age must not matter
    const dryRun = await cleanStaleLockFiles({ sessionsDir: sessions, removeStale: false, nowMs: later });
    expect(dryRun.cleaned).toEqual([]);
    expect(readFileSync(file('garbage.jsonl.lock'), 'utf8')).toBe('garbage\n'); // a dry run writes nothing
    const { locks, cleaned } = await cleanStaleLockFiles({
      sessionsDir: sessions,
      nowMs: later,
      log: { warn: (m) => warnings.push(m) },
    });
    const byName = new Map(locks.map((l) => [path.basename(l.lockPath), l]));
    expect([...byName.keys()].sort()).toEqual([
      'empty-object.jsonl.lock',
      'garbage.jsonl.lock',
      'held-elsewhere.jsonl.lock',
      'held-here.jsonl.lock',
      'killed.jsonl.lock',
    ]);
    for (const name of ['held-here.jsonl.lock', 'held-elsewhere.jsonl.lock']) {
      expect(byName.get(name)).toMatchObject({ stale: false, removed: false, held: true, staleReasons: [] });
      expect(existsSync(file(name))).toBe(true);
      expect(heldByOthers(file(name))).toBe(true);
    }
    expect(byName.get('held-here.jsonl.lock')).toMatchObject({ pid: here.pid, pidAlive: true });
    expect(byName.get('killed.jsonl.lock')).toMatchObject({
      pid: victim.pid,
      pidAlive: false,
      stale: true,
      removed: true,
      staleReasons: ['no-kernel-lock', 'dead-pid', 'too-old'],
    });
    // Unheld, but neither a record nor a marker: reported, never removed (issue 10).
    expect(byName.get('empty-object.jsonl.lock')).toMatchObject({
      pid: null,
      stale: true,
      removed: false,
      staleReasons: ['no-kernel-lock', 'missing-pid', 'too-old'],
    });
    expect(readFileSync(file('garbage.jsonl.lock'), 'utf8')).toBe('garbage\n');
    expect(cleaned.map((c) => path.basename(c.lockPath)).sort()).toEqual(['killed.jsonl.lock']);
    for (const c of cleaned) expect(existsSync(c.lockPath)).toBe(false);
    expect(existsSync(file('unrelated.lock'))).toBe(true);
    expect(warnings.filter((w) => w.startsWith('kept session lock file holding data'))).toHaveLength(2);
    expect(warnings).toHaveLength(3);
    void elsewhere;
  });

  it('keeps a live legacy writer’s marker under respect-live, and returns nothing for a missing directory', async () => {
    const sessions = path.join(dir, 'sessions');
    mkdirSync(sessions);
    const marker = path.join(sessions, 'old.jsonl.lock');
    const content = JSON.stringify({
      pid: process.pid,
      createdAt: new Date().toISOString(),
      starttime: readStartTime('self'),
    });
    writeFileSync(marker, content);
    const kept = await cleanStaleLockFiles({ sessionsDir: sessions });
    expect(kept.locks[0]).toMatchObject({ stale: false, removed: false, pid: process.pid, pidAlive: true });
    expect(readFileSync(marker, 'utf8')).toBe(content);
    const ignored = await cleanStaleLockFiles({ sessionsDir: sessions, legacyMarkers: 'ignore' });
    expect(ignored.cleaned).toHaveLength(1);
    expect(await cleanStaleLockFiles({ sessionsDir: path.join(dir, 'missing') })).toEqual({ locks: [], cleaned: [] });
  });
});
