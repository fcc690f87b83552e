// acquireSessionWriteLock(): the runtime's session lock contract (2026.4.24)
// on a kernel lock. The lock file is `<realpath(dir)>/<basename>.lock`, held
// with flock(2) through kernel-lock, so it disappears the instant its holder
// dies, in any pid namespace, and waiters sleep in the kernel instead of
// polling. No signal or exit handlers: the kernel does that cleanup now.
import { mkdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { lock } from '../lock/acquire.js';
import { LockTimeoutError } from '../lock/errors.js';
import type { LockHandle } from '../lock/handle.js';
import { readRecord } from '../lock/owner-record.js';
import { DEFAULT_MAX_HOLD_MS, DEFAULT_STALE_MS, DEFAULT_TIMEOUT_MS, resolvePositiveMs } from './durations.js';
import { createTimeoutError, type SessionLockHolder, type TimeoutErrorFactory, withHolder } from './error.js';
import { currentHold, hold, type SessionWriteLock, share } from './held.js';
import { describeHolder, describeLegacyHolder, kernelHolder, legacyHolder } from './holder-detail.js';
import {
  LEGACY_MARKER_POLICIES,
  type LegacyMarkerPolicy,
  type LiveLegacyHolder,
  liveLegacyHolder,
} from './legacy-markers.js';

export type { SessionWriteLock };

/** Options of acquireSessionWriteLock(). */
export interface SessionWriteLockOptions {
  /** The session transcript; the lock is `<realpath of its directory>/<basename>.lock`. */
  sessionFile: string;
  /** Milliseconds to wait (default 10 000; Infinity waits forever; invalid values mean the default). */
  timeoutMs?: number;
  /** Accepted for compatibility. Kernel locks never go stale; only legacy markers are judged by age (default 30 min). */
  staleMs?: number;
  /** Force-release the lock after this long (default 5 min). */
  maxHoldMs?: number;
  /** Join a lock this process already holds on the same session (default false, as in the runtime since 2026.4.22). */
  allowReentrant?: boolean;
  /** What to do with markers of the legacy implementation (default 'respect-live'). */
  legacyMarkers?: LegacyMarkerPolicy;
  /** Label stored in the owner record, shown by `kernel-lock status` and in timeout messages. */
  owner?: string;
}

async function lockPathFor(sessionFile: string): Promise<{ key: string; lockPath: string }> {
  const resolved = path.resolve(sessionFile);
  const dir = path.dirname(resolved);
  await mkdir(dir, { recursive: true });
  let realDir = dir;
  try {
    realDir = await realpath(dir);
  } catch {
    // Keep the resolved path (permissions, a transient error): as the runtime does.
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

function timeoutError(
  factory: TimeoutErrorFactory,
  facts: { timeoutMs: number; lockPath: string; holder: SessionLockHolder; detail: string; cause?: unknown },
): Error {
  const owner = facts.holder.pid === null ? 'unknown' : `pid=${facts.holder.pid}`;
  return withHolder(factory({ timeoutMs: facts.timeoutMs, owner, lockPath: facts.lockPath }), facts);
}

/**
 * Acquires the write lock of a session transcript with a given timeout error
 * factory (the runtime's own class inside the runtime, see kernel-lock/openclaw).
 */
export async function acquireSessionWriteLockWith(
  params: SessionWriteLockOptions,
  createError: TimeoutErrorFactory,
): Promise<SessionWriteLock> {
  const policy = validate(params);
  const timeoutMs = resolvePositiveMs(params.timeoutMs, DEFAULT_TIMEOUT_MS, { allowInfinity: true });
  const staleMs = resolvePositiveMs(params.staleMs, DEFAULT_STALE_MS);
  const maxHoldMs = resolvePositiveMs(params.maxHoldMs, DEFAULT_MAX_HOLD_MS);
  const { key, lockPath } = await lockPathFor(params.sessionFile);

  const current = currentHold(key);
  if (params.allowReentrant === true && current !== undefined) return share(current);

  const started = performance.now();
  const remaining = (): number => Math.max(0, timeoutMs - (performance.now() - started));
  let attempt = 0;
  for (;;) {
    if (policy === 'respect-live') {
      const legacy = await liveLegacyAt(lockPath, staleMs);
      if (legacy !== null) {
        // An old-version process holds the session by its marker alone. It
        // takes no kernel lock, so nothing will wake us when it is done:
        // this is the one case where we poll, with the runtime's backoff.
        if (remaining() <= 0) {
          const holder = legacyHolder(legacy);
          throw timeoutError(createError, { timeoutMs, lockPath, holder, detail: describeLegacyHolder(holder) });
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
        // The runtime's release deletes its lock file, and old-version
        // processes need that to get in after us during a rolling upgrade.
        // Unlike the library default: the session lock file's only lockers
        // are kernel-lock (which re-checks the inode after locking) and
        // legacy O_EXCL writers, which never lock and wait for the marker to
        // disappear (docs/MIGRATION.md). A file holding anything but a
        // record or marker is still never removed.
        removeOnRelease: true,
        ...(params.owner === undefined ? {} : { owner: params.owner }),
      });
    } catch (error) {
      if (error instanceof LockTimeoutError) {
        const holder = kernelHolder(error.holder, await readRecord(lockPath));
        throw timeoutError(createError, { timeoutMs, lockPath, holder, detail: describeHolder(holder), cause: error });
      }
      throw error;
    }
    return hold(key, lockPath, handle, maxHoldMs);
  }
}

/**
 * Acquires the write lock of a session transcript. Resolves with a lock whose
 * `release()` gives it back; rejects with SessionWriteLockTimeoutError (code
 * OPENCLAW_SESSION_WRITE_LOCK_TIMEOUT) when someone else still holds it after `timeoutMs`.
 */
export function acquireSessionWriteLock(params: SessionWriteLockOptions): Promise<SessionWriteLock> {
  return acquireSessionWriteLockWith(params, createTimeoutError);
}
