// kernel-lock/fs-safe: the file-lock contract of `@openclaw/fs-safe/file-lock`
// (0.18.1 and 0.21.0) on kernel locks. Same exports, options, handle shapes
// and error codes; what each option means here is in docs/FS-SAFE.md.

export {
  FILE_LOCK_STALE,
  FILE_LOCK_TIMEOUT,
  FileLockError,
  FsSafeError,
  type FsSafeErrorCode,
} from './errors.js';
export {
  acquireFileLock,
  createFileLockManager,
  drainFileLockManagerForTest,
  resetFileLockManagerForTest,
  withFileLock,
} from './file-lock.js';
export { configureFsSafeLocks, getFsSafeLockConfig, retryScheduleMs } from './options.js';
export { acquireFileLockSync, withFileLockSync } from './sync.js';
export type {
  FileLockAcquireOptions,
  FileLockCommonOptions,
  FileLockHandle,
  FileLockHeldEntry,
  FileLockManager,
  FileLockReclaimParams,
  FileLockRetryOptions,
  FileLockRoot,
  FileLockStaleRecovery,
  FileLockStaleSnapshot,
  FileLockSyncAcquireOptions,
  FileLockSyncHandle,
  FsSafeLockConfig,
  LegacyMarkerPolicy,
  SidecarLockCompromisedInfo,
} from './types.js';
