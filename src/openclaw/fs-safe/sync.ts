// acquireFileLockSync() and withFileLockSync(): the same contract, blocking
// the calling thread in the kernel (lockSync with a deadline). fs-safe's
// synchronous API uses one process-wide domain; so does this one. A wait
// that could never end (this thread already holds the lock through another
// acquisition) fails at once with `file_lock_timeout` instead of blocking
// for the whole budget first, as fs-safe's sleep loop would.
import { lockSync } from '../../lock/acquire.js';
import type { LockHandle } from '../../lock/handle.js';
import { kernelTimeout, markerDelayMs, markerStale, markerTimeout } from './contention.js';
import { FILE_LOCK_TIMEOUT, FileLockError, suppressedError } from './errors.js';
import { addEntry, domain, dropReference, type HeldEntry, verifyEntry } from './held.js';
import { judgeMarkerSync, readLegacyMarker } from './legacy-marker.js';
import { resolveOptions } from './options.js';
import { type LockPaths, resolveLockPathsSync } from './paths.js';
import { evaluatePayloadSync } from './payload.js';
import type { FileLockSyncAcquireOptions, FileLockSyncHandle } from './types.js';

/** The domain of the synchronous API (fs-safe: "one process-wide domain"). */
export const SYNC_DOMAIN_KEY = 'kernel-lock.fs-safe.sync';

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
function sleepSync(ms: number): void {
  Atomics.wait(sleepCell, 0, 0, ms);
}

function syncHandle(entry: HeldEntry): FileLockSyncHandle {
  const state = domain(SYNC_DOMAIN_KEY);
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    dropReference(state, entry);
  };
  return {
    lockPath: entry.lockPath,
    normalizedTargetPath: entry.normalizedTargetPath,
    verifyStillHeld: () => !released && verifyEntry(entry),
    release,
    [Symbol.dispose]: release,
  };
}

function selfDeadlock(paths: LockPaths, cause: unknown): FileLockError {
  return new FileLockError(
    FILE_LOCK_TIMEOUT,
    paths,
    `held by this thread (pid ${process.pid}) through another acquisition; a synchronous wait would never end`,
    { holderPid: process.pid, cause },
  );
}

/** Acquires the lock synchronously, blocking the thread in the kernel until it is free or the deadline passes. */
export function acquireFileLockSync<TPayload extends Record<string, unknown>>(
  targetPath: string,
  options: FileLockSyncAcquireOptions<TPayload>,
): FileLockSyncHandle {
  const resolved = resolveOptions(options, 'acquireFileLockSync');
  const paths = resolveLockPathsSync(targetPath, options.lockPath, options.lockRoot, 'acquireFileLockSync');
  const state = domain(SYNC_DOMAIN_KEY);
  const held = state.held.get(paths.normalizedTargetPath);
  if (held !== undefined && !held.ended) {
    if (options.reentrantOwner !== undefined && held.reentrantOwner === options.reentrantOwner) {
      held.refCount += 1;
      return syncHandle(held);
    }
    throw selfDeadlock(paths, undefined);
  }
  const owner = evaluatePayloadSync(options);
  const started = performance.now();
  const deadline = started + resolved.waitMs;
  let handle: LockHandle;
  for (let attempt = 0; ; attempt += 1) {
    if (resolved.legacyMarkers === 'respect') {
      const marker = readLegacyMarker(paths.lockPath);
      if (marker !== null) {
        const verdict = judgeMarkerSync(marker, {
          ...paths,
          staleMs: resolved.staleMs,
          staleRecovery: resolved.staleRecovery,
          parsePayload: options.parsePayload,
          shouldReclaim: options.shouldReclaim as (params: unknown) => unknown,
          shouldRemoveStaleLock: options.shouldRemoveStaleLock,
        });
        if (verdict === 'stale') throw markerStale(paths, marker);
        if (verdict === 'live') {
          const remaining = deadline - performance.now();
          if (remaining <= 0) throw markerTimeout(paths, marker, performance.now() - started);
          sleepSync(markerDelayMs(resolved.retry, attempt, remaining));
          continue;
        }
      }
    }
    try {
      handle = lockSync(paths.lockPath, {
        timeout: Math.max(0, deadline - performance.now()),
        removeOnRelease: true,
        ...(owner === undefined ? {} : { owner }),
      });
    } catch (error) {
      if ((error as { code?: unknown }).code === 'EDEADLK') throw selfDeadlock(paths, error);
      kernelTimeout(error, paths, options.parsePayload, options);
    }
    break;
  }
  const entry = addEntry(state, {
    handle,
    paths,
    reentrantOwner: options.reentrantOwner,
    metadata: {},
    onCompromised: options.onCompromised,
    receiver: options,
    retention: null, // fs-safe's synchronous API has no retainOnExit
  });
  return syncHandle(entry);
}

/** Runs `fn` under the lock and releases it however `fn` ends. */
export function withFileLockSync<T, TPayload extends Record<string, unknown>>(
  targetPath: string,
  options: FileLockSyncAcquireOptions<TPayload>,
  fn: () => T,
): T {
  const handle = acquireFileLockSync(targetPath, options);
  let result: T;
  try {
    result = fn();
  } catch (bodyError) {
    try {
      handle.release();
    } catch (releaseError) {
      throw suppressedError(releaseError, bodyError, 'file lock callback and release both failed');
    }
    throw bodyError;
  }
  handle.release();
  return result;
}
