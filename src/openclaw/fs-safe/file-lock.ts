// The asynchronous entry points of `@openclaw/fs-safe/file-lock`: the
// one-shot acquireFileLock()/withFileLock(), long-lived managers, and the
// test-state helpers. Domains and their keys are fs-safe's: an omitted
// managerKey means `fs-safe.file-lock:${targetPath}`.
import { acquireInDomain } from './acquire.js';
import { suppressedError } from './errors.js';
import { domain, endEntry } from './held.js';
import type { FileLockAcquireOptions, FileLockHandle, FileLockHeldEntry, FileLockManager } from './types.js';

function managerKeyFor(targetPath: string, managerKey: string | undefined): string {
  return managerKey ?? `fs-safe.file-lock:${targetPath}`;
}

async function runWithLock<T>(handle: FileLockHandle, fn: () => Promise<T>): Promise<T> {
  let result: T;
  try {
    result = await fn();
  } catch (bodyError) {
    try {
      await handle.release();
    } catch (releaseError) {
      throw suppressedError(releaseError, bodyError, 'file lock callback and release both failed');
    }
    throw bodyError;
  }
  await handle.release();
  return result;
}

/** A manager domain: acquisitions keyed by canonical target, with owner-scoped reentrancy. */
export function createFileLockManager(key: string): FileLockManager {
  if (typeof key !== 'string' || key.length === 0) {
    throw new TypeError(`createFileLockManager: key must be a non-empty string, got ${JSON.stringify(key)}`);
  }
  const state = domain(key);
  return {
    acquire: (targetPath, options) => acquireInDomain(state, targetPath, options),
    withLock: async (targetPath, options, fn) => runWithLock(await acquireInDomain(state, targetPath, options), fn),
    async drain(): Promise<void> {
      for (const entry of [...state.held.values()]) endEntry(state, entry);
    },
    reset(): void {
      for (const entry of [...state.held.values()]) {
        try {
          endEntry(state, entry);
        } catch {
          // Best effort, as fs-safe's reset: the table is cleared regardless.
        }
      }
      state.held.clear();
    },
    heldEntries(): FileLockHeldEntry[] {
      return [...state.held.values()].map((entry) => ({
        normalizedTargetPath: entry.normalizedTargetPath,
        lockPath: entry.lockPath,
        acquiredAt: entry.acquiredAt,
        metadata: entry.metadata,
        forceRelease: async () => endEntry(state, entry),
      }));
    },
  };
}

/** Acquires the lock on `targetPath` (its `.lock` sidecar, held by the kernel). */
export async function acquireFileLock<TPayload extends Record<string, unknown>>(
  targetPath: string,
  options: FileLockAcquireOptions<TPayload>,
): Promise<FileLockHandle> {
  const state = domain(managerKeyFor(targetPath, options?.managerKey));
  return acquireInDomain(state, targetPath, options);
}

/** Runs `fn` under the lock and releases it however `fn` ends. */
export async function withFileLock<T, TPayload extends Record<string, unknown>>(
  targetPath: string,
  options: FileLockAcquireOptions<TPayload>,
  fn: () => Promise<T>,
): Promise<T> {
  return runWithLock(await acquireFileLock(targetPath, options), fn);
}

/** Test helper: releases every lock of the domain (default key for `targetPath`). */
export async function drainFileLockManagerForTest(targetPath: string, managerKey?: string): Promise<void> {
  await createFileLockManager(managerKeyFor(targetPath, managerKey)).drain();
}

/** Test helper: releases and forgets every lock of the domain, synchronously. */
export function resetFileLockManagerForTest(targetPath: string, managerKey?: string): void {
  createFileLockManager(managerKeyFor(targetPath, managerKey)).reset();
}
