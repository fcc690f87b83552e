// acquireSessionWriteLock(): the legacy runtime's session lock contract on a
// kernel lock. The lock file is `<realpath(dir)>/<basename>.lock`, held with
// flock(2) through kernel-lock, so it disappears the instant its holder dies,
// in any pid namespace, and waiters sleep in the kernel instead of polling.
// No signal or exit handlers: the kernel does that cleanup now.
import { mkdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { lock } from '../lock/acquire.js';
import { LockTimeoutError } from '../lock/errors.js';
import type { LockHandle } from '../lock/handle.js';
import { readRecord } from '../lock/owner-record.js';
import {
  DEFAULT_MAX_HOLD_MS,
  DEFAULT_STALE_MS,
  DEFAULT_TIMEOUT_MS,
  MAX_LOCK_HOLD_MS,
  resolvePositiveMs,
} from './durations.js';
import { SessionWriteLockError } from './error.js';
import { describeTimeout, legacyTimeoutDetail } from './holder-detail.js';
import {
  LEGACY_MARKER_POLICIES,
  type LegacyMarkerPolicy,
  type LiveLegacyHolder,
  liveLegacyHolder,
} from './legacy-markers.js';

/** Options of acquireSessionWriteLock(). */
export interface SessionWriteLockOptions {
  /** The session transcript; the lock is `<realpath of its directory>/<basename>.lock`. */
  sessionFile: string;
  /** Milliseconds to wait (default 10 000; Infinity waits forever; invalid values mean the default). */
  timeoutMs?: number;
  /** Accepted for compatibility. Kernel locks never go stale; only legacy markers are judged by age. */
  staleMs?: number;
  /** Force-release the lock after this long (default 5 min, at most 2 147 000 000). */
  maxHoldMs?: number;
  /** Share a lock this process already holds on the same session (default true). */
  allowReentrant?: boolean;
  /** What to do with markers of the legacy implementation (default 'respect-live'). */
  legacyMarkers?: LegacyMarkerPolicy;
  /** Label stored in the owner record, shown by `kernel-lock status` and in timeout messages. */
  owner?: string;
}

/** A held session write lock. */
export interface SessionWriteLock {
  /** Releases this acquisition; the lock goes away at the last one. Safe to call twice. */
  release(): Promise<void>;
  /** The lock file. */
  readonly lockPath: string;
  /**
   * Aborted when the watchdog force-released the lock (held past maxHoldMs).
   * A holder that finds it aborted no longer owns the session and must not
   * write: check it before each append.
   */
  readonly signal: AbortSignal;
}

/** One kernel lock held by this process, shared by reentrant acquisitions. */
interface HeldSession {
  lockPath: string;
  handle: LockHandle;
  count: number;
  acquiredAt: number;
  maxHoldMs: number;
  watchdog: NodeJS.Timeout | undefined;
  controller: AbortController;
  /** Set once the kernel lock is gone (last release or watchdog); later releases do nothing. */
  ended: boolean;
}

// One table per process, even when both the ESM and the CommonJS build (or
// the CLI bundle) are loaded: reentrancy is a property of the process.
const TABLE_KEY = Symbol.for('kernel-lock.session.held');
const globalTable = globalThis as { [TABLE_KEY]?: Map<string, HeldSession> };
globalTable[TABLE_KEY] ??= new Map();
const heldSessions: Map<string, HeldSession> = globalTable[TABLE_KEY];

function endHold(key: string, entry: HeldSession): void {
  entry.ended = true;
  if (entry.watchdog !== undefined) clearTimeout(entry.watchdog);
  if (heldSessions.get(key) === entry) heldSessions.delete(key);
  // Unlinks the file while still holding the lock, then closes: a waiter
  // woken on the old inode sees it was unlinked and starts over.
  entry.handle.releaseSync();
}

function forceRelease(key: string, entry: HeldSession): void {
  if (entry.ended) return;
  const heldForMs = Math.round(performance.now() - entry.acquiredAt);
  endHold(key, entry);
  process.stderr.write(
    `[kernel-lock/session] force-released a session lock held for ${heldForMs}ms (maxHoldMs=${entry.maxHoldMs}): ${entry.lockPath}\n`,
  );
  entry.controller.abort(
    new Error(`session lock force-released after ${heldForMs}ms (maxHoldMs=${entry.maxHoldMs}): ${entry.lockPath}`),
  );
}

function share(key: string, entry: HeldSession): SessionWriteLock {
  entry.count += 1;
  let released = false;
  return {
    lockPath: entry.lockPath,
    signal: entry.controller.signal,
    async release(): Promise<void> {
      if (released) return;
      released = true;
      // A handle whose lock the watchdog already took away must not touch
      // whatever holds the session now: its entry is ended and forgotten.
      if (entry.ended) return;
      entry.count -= 1;
      if (entry.count === 0) endHold(key, entry);
    },
  };
}

async function lockPathFor(sessionFile: string): Promise<{ key: string; lockPath: string }> {
  const resolved = path.resolve(sessionFile);
  const dir = path.dirname(resolved);
  await mkdir(dir, { recursive: true });
  let realDir = dir;
  try {
    realDir = await realpath(dir);
  } catch {
    // Keep the resolved path (permissions, a transient error): same as legacy.
  }
  const key = path.join(realDir, path.basename(resolved));
  return { key, lockPath: `${key}.lock` };
}

async function mtimeOf(file: string): Promise<number | null> {
  try {
    return (await stat(file)).mtimeMs;
  } catch {
    return null;
  }
}

async function liveLegacyAt(lockPath: string, staleMs: number): Promise<LiveLegacyHolder | null> {
  const record = await readRecord(lockPath);
  if (record === null) return null;
  return liveLegacyHolder(record, await mtimeOf(lockPath), staleMs);
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function validate(params: SessionWriteLockOptions): LegacyMarkerPolicy {
  if (typeof params !== 'object' || params === null) {
    throw new TypeError('kernel-lock/session: acquireSessionWriteLock needs an options object { sessionFile, ... }');
  }
  if (typeof params.sessionFile !== 'string' || params.sessionFile.length === 0) {
    throw new TypeError(
      `kernel-lock/session: sessionFile must be a non-empty string, got ${JSON.stringify(params.sessionFile)}`,
    );
  }
  const policy = params.legacyMarkers ?? 'respect-live';
  if (!LEGACY_MARKER_POLICIES.includes(policy)) {
    throw new TypeError(
      `kernel-lock/session: legacyMarkers must be 'respect-live' or 'ignore', got ${JSON.stringify(policy)}`,
    );
  }
  if (params.owner !== undefined && typeof params.owner !== 'string') {
    throw new TypeError('kernel-lock/session: owner must be a string');
  }
  return policy;
}

/**
 * Acquires the write lock of a session transcript. Resolves with a lock whose
 * `release()` gives it back; rejects with SessionWriteLockError (reason
 * "session_busy") when it is still held by someone else after `timeoutMs`.
 */
export async function acquireSessionWriteLock(params: SessionWriteLockOptions): Promise<SessionWriteLock> {
  const policy = validate(params);
  const timeoutMs = resolvePositiveMs(params.timeoutMs, DEFAULT_TIMEOUT_MS, { allowInfinity: true });
  const staleMs = resolvePositiveMs(params.staleMs, DEFAULT_STALE_MS, { allowInfinity: true });
  const maxHoldMs = Math.min(MAX_LOCK_HOLD_MS, resolvePositiveMs(params.maxHoldMs, DEFAULT_MAX_HOLD_MS));
  const { key, lockPath } = await lockPathFor(params.sessionFile);

  const current = heldSessions.get(key);
  if ((params.allowReentrant ?? true) && current !== undefined && !current.ended) return share(key, current);

  const started = performance.now();
  const remaining = (): number => Math.max(0, timeoutMs - (performance.now() - started));
  let attempt = 0;
  for (;;) {
    if (policy === 'respect-live') {
      const legacy = await liveLegacyAt(lockPath, staleMs);
      if (legacy !== null) {
        // An old-version process holds the session by its marker alone. It
        // takes no kernel lock, so nothing will wake us when it is done:
        // this is the one case where we poll, with the legacy backoff.
        if (remaining() <= 0) {
          throw new SessionWriteLockError({
            timeoutMs,
            lockPath,
            pid: legacy.pid,
            detail: legacyTimeoutDetail(legacy),
            holder: legacy,
          });
        }
        attempt += 1;
        await sleep(Math.min(1000, 50 * attempt, remaining()));
        continue;
      }
    }
    let handle: LockHandle;
    try {
      handle = await lock(lockPath, {
        timeout: remaining(),
        ...(params.owner === undefined ? {} : { owner: params.owner }),
        // Unlike the library default, the session lock file goes away on
        // release: its only lockers are kernel-lock (which re-checks the
        // inode after locking) and legacy O_EXCL writers, which never lock
        // and wait for the marker to disappear (docs/MIGRATION.md). A file
        // holding anything but a record or marker is still never removed.
        removeOnRelease: true,
      });
    } catch (error) {
      if (error instanceof LockTimeoutError) {
        const { pid, detail } = describeTimeout(error);
        throw new SessionWriteLockError({ timeoutMs, lockPath, pid, detail, holder: error.holder, cause: error });
      }
      throw error;
    }
    const entry: HeldSession = {
      lockPath,
      handle,
      count: 0,
      acquiredAt: performance.now(),
      maxHoldMs,
      watchdog: undefined,
      controller: new AbortController(),
      ended: false,
    };
    entry.watchdog = setTimeout(() => forceRelease(key, entry), maxHoldMs);
    entry.watchdog.unref();
    // With allowReentrant false two acquisitions of this process can hold in
    // turn; the table names the latest, which is the one reentrancy joins.
    heldSessions.set(key, entry);
    return share(key, entry);
  }
}
