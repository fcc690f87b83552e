// The runtime's session-write-lock module (2026.4.24), export for export, on
// kernel-lock. `createSessionWriteLockModule()` builds it around a timeout
// error factory: kernel-lock/session uses its own SessionWriteLockTimeoutError,
// and the `--import` hook (kernel-lock/openclaw) passes the runtime's own
// class, so the runtime's `instanceof` checks hold for errors we throw. Every
// instance shares one table of held locks per process.

import type { LockEngine } from '../lock/engine.js';
import { acquireSessionWriteLockWith, type SessionWriteLockOptions } from './acquire.js';
import { cleanStaleLockFiles } from './clean.js';
import { resolveSessionLockMaxHoldFromTimeout } from './durations.js';
import { createTimeoutError, type TimeoutErrorFactory } from './error.js';
import { releaseAllLocksSync, runLockWatchdogCheck, type SessionWriteLock } from './held.js';

/**
 * The runtime's test helpers. kernel-lock installs no exit or signal
 * handlers (the kernel releases a dead process's locks), so `cleanupSignals`
 * is empty and `handleTerminationSignal(signal)` only releases every held
 * lock; it never re-raises the signal.
 */
export interface SessionWriteLockTesting {
  cleanupSignals: NodeJS.Signals[];
  handleTerminationSignal(signal: NodeJS.Signals): void;
  releaseAllLocksSync(): void;
  runLockWatchdogCheck(nowMs?: number): Promise<number>;
}

/** Everything the runtime's session-write-lock module exports. */
export interface SessionWriteLockModule {
  acquireSessionWriteLock(params: SessionWriteLockOptions): Promise<SessionWriteLock>;
  cleanStaleLockFiles: typeof cleanStaleLockFiles;
  resolveSessionLockMaxHoldFromTimeout: typeof resolveSessionLockMaxHoldFromTimeout;
  drainSessionWriteLockStateForTest(): Promise<void>;
  resetSessionWriteLockStateForTest(): void;
  __testing: SessionWriteLockTesting;
}

/** The testing helpers, shared by every instance. */
export const sessionWriteLockTesting: SessionWriteLockTesting = {
  cleanupSignals: [],
  handleTerminationSignal: () => releaseAllLocksSync(),
  releaseAllLocksSync,
  runLockWatchdogCheck,
};

/** Force-releases every session lock this process holds (the runtime's test teardown). */
export async function drainSessionWriteLockStateForTest(): Promise<void> {
  releaseAllLocksSync();
}

/** Releases every session lock this process holds, synchronously (the runtime's test reset). */
export function resetSessionWriteLockStateForTest(): void {
  releaseAllLocksSync();
}

/** Defaults of a module instance. */
export interface SessionWriteLockModuleOptions {
  /**
   * The lock engine for acquisitions that pass none (the `--import` hook:
   * PostgreSQL when KERNEL_LOCK_SESSION_PG_URL is set), called at each
   * acquisition; undefined or returning undefined: files.
   */
  engine?: () => LockEngine | undefined;
}

/** The runtime's session-write-lock module on kernel-lock, throwing timeouts built by `createError`. */
export function createSessionWriteLockModule(
  createError: TimeoutErrorFactory = createTimeoutError,
  options: SessionWriteLockModuleOptions = {},
): SessionWriteLockModule {
  const withEngine = (params: SessionWriteLockOptions): SessionWriteLockOptions => {
    if (options.engine === undefined || typeof params !== 'object' || params === null || params.engine !== undefined) {
      return params;
    }
    const engine = options.engine();
    return engine === undefined ? params : { ...params, engine };
  };
  return {
    acquireSessionWriteLock: async (params) => acquireSessionWriteLockWith(withEngine(params), createError),
    cleanStaleLockFiles,
    resolveSessionLockMaxHoldFromTimeout,
    drainSessionWriteLockStateForTest,
    resetSessionWriteLockStateForTest,
    __testing: sessionWriteLockTesting,
  };
}
