// The asynchronous acquisition of a manager domain. One kernel wait with a
// deadline replaces fs-safe's create-retry-sleep loop: the waiter sleeps in
// the kernel and wakes when the holder releases or dies, in any pid
// namespace, so no pid is ever guessed and a held lock is never judged stale.
import { setTimeout as sleep } from 'node:timers/promises';
import { lock } from '../../lock/acquire.js';
import type { LockHandle } from '../../lock/handle.js';
import { kernelTimeout, markerDelayMs, markerStale, markerTimeout } from './contention.js';
import { FILE_LOCK_TIMEOUT, FileLockError } from './errors.js';
import { addEntry, type DomainState, dropReference, type HeldEntry, verifyEntry } from './held.js';
import { judgeMarker, readLegacyMarker, type StalePolicy } from './legacy-marker.js';
import { type ResolvedOptions, resolveOptions } from './options.js';
import { type LockPaths, resolveLockPaths } from './paths.js';
import { evaluatePayload } from './payload.js';
import type { FileLockAcquireOptions, FileLockHandle } from './types.js';

/** A new handle on an entry: one reference, released at most once. */
export function handleFor(state: DomainState, entry: HeldEntry): FileLockHandle {
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    dropReference(state, entry);
  };
  return {
    lockPath: entry.lockPath,
    normalizedTargetPath: entry.normalizedTargetPath,
    verifyStillHeld: async () => !released && verifyEntry(entry),
    release,
    [Symbol.asyncDispose]: release,
  };
}

function stalePolicy<T extends Record<string, unknown>>(
  options: FileLockAcquireOptions<T>,
  paths: LockPaths,
  resolved: ResolvedOptions,
): StalePolicy {
  return {
    ...paths,
    staleMs: resolved.staleMs,
    staleRecovery: resolved.staleRecovery,
    parsePayload: options.parsePayload,
    shouldReclaim: options.shouldReclaim,
    shouldRemoveStaleLock: options.shouldRemoveStaleLock,
  };
}

/**
 * Another acquisition of this domain holds the same target through a
 * different lock file: fs-safe arbitrates by target inside a domain, so wait
 * for that entry to end (no polling: its end resolves a promise).
 */
async function waitForOtherLockPath(
  state: DomainState,
  paths: LockPaths,
  deadline: number,
  options: { reentrantOwner?: string | undefined },
): Promise<HeldEntry | null> {
  for (;;) {
    const held = state.held.get(paths.normalizedTargetPath);
    if (held === undefined || held.ended) return null;
    if (options.reentrantOwner !== undefined && held.reentrantOwner === options.reentrantOwner) return held;
    if (held.lockPath === paths.lockPath) return null; // the kernel lock arbitrates
    const remaining = deadline - performance.now();
    if (remaining <= 0) {
      throw new FileLockError(
        FILE_LOCK_TIMEOUT,
        paths,
        `held in this process (pid ${process.pid}) through ${held.lockPath}`,
        { holderPid: process.pid },
      );
    }
    const timer = Number.isFinite(remaining) ? sleep(remaining, undefined, { ref: false }) : new Promise(() => {});
    await Promise.race([held.done, timer]);
  }
}

/** Acquires `targetPath` in `state`'s domain. */
export async function acquireInDomain<T extends Record<string, unknown>>(
  state: DomainState,
  targetPath: string,
  options: FileLockAcquireOptions<T>,
): Promise<FileLockHandle> {
  const resolved = resolveOptions(options, 'acquireFileLock');
  const paths = await resolveLockPaths(targetPath, options.lockPath, options.lockRoot, 'acquireFileLock');
  const started = performance.now();
  const deadline = started + resolved.waitMs;
  const shared = await waitForOtherLockPath(state, paths, deadline, options);
  if (shared !== null) {
    shared.refCount += 1;
    return handleFor(state, shared);
  }
  const owner = await evaluatePayload(options);
  const policy = stalePolicy(options, paths, resolved);
  let handle: LockHandle;
  for (let attempt = 0; ; attempt += 1) {
    if (resolved.legacyMarkers === 'respect') {
      const marker = readLegacyMarker(paths.lockPath);
      const verdict = marker === null ? 'none' : await judgeMarker(marker, policy);
      if (marker !== null && verdict === 'stale') throw markerStale(paths, marker);
      if (marker !== null && verdict === 'live') {
        const remaining = deadline - performance.now();
        if (remaining <= 0) throw markerTimeout(paths, marker, performance.now() - started);
        await sleep(markerDelayMs(resolved.retry, attempt, remaining));
        continue;
      }
    }
    try {
      handle = await lock(paths.lockPath, {
        timeout: Math.max(0, deadline - performance.now()),
        removeOnRelease: true,
        ...(owner === undefined ? {} : { owner }),
      });
    } catch (error) {
      kernelTimeout(error, paths, options.parsePayload, options);
    }
    break;
  }
  const entry = addEntry(state, {
    handle,
    paths,
    reentrantOwner: options.reentrantOwner,
    metadata: options.metadata ?? {},
    onCompromised: options.onCompromised,
    receiver: options,
  });
  return handleFor(state, entry);
}
