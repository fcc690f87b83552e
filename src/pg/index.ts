// kernel-lock/pg: the same lock API on PostgreSQL advisory locks, for
// processes on several hosts. The server holds each lock for a session and
// drops it the instant the session ends; see docs/PG.md.
export type { EngineLock, EngineLockOptions, EngineTryLockOptions, LockEngine } from '../lock/engine.js';
export { AbortError, ELOCKED, LockTimeoutError } from '../lock/errors.js';
export type { LockMode } from '../lock/options.js';
export { PgLocks } from './engine.js';
export { PgLockError, type PgLockErrorCode, PgLockTimeoutError } from './errors.js';
export { PgLockHandle } from './handle.js';
export { describePgInspection } from './inspect.js';
export type { PgLockInspection, PgLockSession, PgOwnerRecord } from './inspect-types.js';
export { keyParts, lockKey } from './keys.js';
export type {
  PgConnection,
  PgConnectionOptions,
  PgLockOptions,
  PgLocksOptions,
  PgTimings,
  PgTryLockOptions,
} from './options.js';
