// kernel-lock/session: a drop-in replacement for the agent runtime's session
// write lock (openclaw 2026.4.24: same exports, defaults, error class, code
// and messages), built on kernel locks, with the fenced API of the runtime's
// later generations (fencingToken, assertCurrent()/assertOwned(),
// SessionWriteLockStaleError) on top.
export type { EngineLock, LockEngine } from '../lock/engine.js';
export type { SessionWriteLock, SessionWriteLockOptions } from './acquire.js';
export { acquireSessionWriteLock } from './acquire.js';
export type { CleanStaleLockFilesOptions, SessionLockInspection } from './clean.js';
export { cleanStaleLockFiles } from './clean.js';
export { resolveSessionLockMaxHoldFromTimeout } from './durations.js';
export { sessionLockName } from './engine-hold.js';
export type { SessionLockHolder, SessionWriteLockTimeoutParams, TimeoutErrorFactory } from './error.js';
export {
  isSessionWriteLockTimeoutError,
  SESSION_WRITE_LOCK_TIMEOUT_CODE,
  SessionWriteLockTimeoutError,
} from './error.js';
export type { LegacyMarkerPolicy } from './legacy-markers.js';
export type { SessionWriteLockModule, SessionWriteLockModuleOptions, SessionWriteLockTesting } from './module.js';
export {
  createSessionWriteLockModule,
  drainSessionWriteLockStateForTest,
  resetSessionWriteLockStateForTest,
  sessionWriteLockTesting as __testing,
} from './module.js';
export type { SessionStaleCause, SessionWriteLockStaleParams } from './stale-error.js';
export {
  isSessionWriteLockAcquireError,
  isSessionWriteLockStaleError,
  SESSION_WRITE_LOCK_STALE_CODE,
  SessionWriteLockStaleError,
} from './stale-error.js';
