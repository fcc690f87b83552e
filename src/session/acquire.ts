// acquireSessionWriteLock(): the runtime's session lock contract (2026.4.24,
// plus the fenced API of its later generations) on kernel locks. The session
// is held through a fenced lease on `<realpath(dir)>/<basename>.lease` and
// the lock file the runtime knows, `<realpath(dir)>/<basename>.lock`
// (file-engine.ts), so it is freed the instant its holder dies, in any pid
// namespace, waiters sleep in the kernel instead of polling, and every hold
// carries a fencing token. No signal or exit handlers: the kernel does that
// cleanup now. With the `engine` option (sessions shared across hosts) the
// session is held by that engine instead (engine-hold.ts): no files at all.
import { mkdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { LockEngine } from '../lock/engine.js';
import { readRecord } from '../lock/owner-record.js';
import { DEFAULT_MAX_HOLD_MS, DEFAULT_STALE_MS, DEFAULT_TIMEOUT_MS, resolvePositiveMs } from './durations.js';
import { acquireOnEngine, checkEngine, EngineHoldTimeout, engineHoldKey, sessionLockName } from './engine-hold.js';
import { createTimeoutError, type SessionLockHolder, type TimeoutErrorFactory, withHolder } from './error.js';
import { acquireOnFiles, FileHoldTimeout } from './file-engine.js';
import { currentHold, hold, type SessionWriteLock, share } from './held.js';
import { describeHolder, describeLegacyHolder, legacyHolder } from './holder-detail.js';
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
  /**
   * How long a hold may last (default 5 min). Past it, the hold is fenced:
   * its own watchdog ends it (`signal` aborts, assertCurrent() and fenced
   * writes throw SessionWriteLockStaleError), or, with `fencing`, any waiter
   * supersedes it, even when the holder's event loop is wedged.
   */
  maxHoldMs?: number;
  /**
   * The caller routes every transcript write through `lock.write()` (or calls
   * `lock.assertCurrent()` right before it), so a waiter may supersede this
   * hold once it is older than maxHoldMs (default false: only this process's
   * own watchdog ends it, as in the runtime; a hold whose writes are not
   * fenced must never be superseded, or its late writes would land after
   * its successor's).
   */
  fencing?: boolean;
  /** Join a lock this process already holds on the same session (default false, as in the runtime since 2026.4.22). */
  allowReentrant?: boolean;
  /** What to do with markers of the legacy implementation (default 'respect-live'). */
  legacyMarkers?: LegacyMarkerPolicy;
  /** Label stored in the owner record, shown by `kernel-lock status` and in timeout messages. */
  owner?: string;
  /**
   * Hold the session on this lock engine instead of files: for sessions
   * shared across hosts, a PgLocks from kernel-lock/pg (a PostgreSQL
   * advisory lock, dropped by the server when the holder's session ends).
   * No lock file, lease file or legacy marker is used; `fencingToken` is the
   * engine's token, and the hold goes stale (`signal` aborts, assertCurrent()
   * and write() throw) as soon as the engine loses the lock. `fencing` is
   * refused with an engine: a live holder's engine lock cannot be taken over.
   */
  engine?: LockEngine;
  /**
   * The engine's lock name for this session (only with `engine`). Default
   * `session/<basename of sessionFile>`, the same on every host whatever the
   * mount point of a shared directory (see sessionLockName()).
   */
  lockName?: string;
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
  if (params.fencing !== undefined && typeof params.fencing !== 'boolean') {
    throw new TypeError(`kernel-lock/session: fencing must be a boolean, got ${JSON.stringify(params.fencing)}`);
  }
  if (params.engine !== undefined) {
    checkEngine(params.engine);
    if (params.fencing === true) {
      throw new TypeError(
        `kernel-lock/session: fencing (supersession by a waiter past maxHoldMs) is not available with the ${params.engine.kind} ` +
          "engine: its lock cannot be taken from a live holder. Omit fencing; the hold's own watchdog still ends it at maxHoldMs",
      );
    }
    if (params.lockName !== undefined && (typeof params.lockName !== 'string' || params.lockName.length === 0)) {
      throw new TypeError(
        `kernel-lock/session: lockName must be a non-empty string, got ${JSON.stringify(params.lockName)}`,
      );
    }
  } else if (params.lockName !== undefined) {
    throw new TypeError(
      'kernel-lock/session: lockName names the lock of an `engine`; without one the session is locked on its lock file. ' +
        'Pass engine too, or drop lockName',
    );
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
  const { key: fileKey, lockPath } = await lockPathFor(params.sessionFile);
  const engine = params.engine;
  const lockName = engine === undefined ? lockPath : (params.lockName ?? sessionLockName(params.sessionFile));
  const key = engine === undefined ? fileKey : engineHoldKey(engine, lockName);

  const current = currentHold(key);
  if (params.allowReentrant === true && current !== undefined) return share(current);

  if (engine !== undefined) {
    try {
      const grant = await acquireOnEngine({
        engine,
        key,
        lockName,
        lockPath,
        owner: params.owner,
        maxHoldMs,
        timeoutMs,
      });
      return hold(grant);
    } catch (error) {
      if (!(error instanceof EngineHoldTimeout)) throw error;
      const { holder, detail, cause } = error;
      throw timeoutError(createError, { timeoutMs, lockPath, holder, detail, cause });
    }
  }

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
    try {
      const grant = await acquireOnFiles({
        key,
        lockPath,
        owner: params.owner,
        fencing: params.fencing === true,
        maxHoldMs,
        timeoutMs: remaining(),
      });
      return hold(grant);
    } catch (error) {
      if (!(error instanceof FileHoldTimeout)) throw error;
      const holder = error.holder;
      throw timeoutError(createError, {
        timeoutMs,
        lockPath,
        holder,
        detail: describeHolder(holder),
        cause: error.cause,
      });
    }
  }
}

/**
 * Acquires the write lock of a session transcript. Resolves with a lock whose
 * `release()` gives it back and whose `fencingToken`, `assertCurrent()` and
 * `write()` fence the holder's writes; rejects with
 * SessionWriteLockTimeoutError (code OPENCLAW_SESSION_WRITE_LOCK_TIMEOUT)
 * when someone else still holds it after `timeoutMs`.
 */
export function acquireSessionWriteLock(params: SessionWriteLockOptions): Promise<SessionWriteLock> {
  return acquireSessionWriteLockWith(params, createTimeoutError);
}
