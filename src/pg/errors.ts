// Errors of the PostgreSQL engine. A timeout is the core's LockTimeoutError
// (code ELOCKED), so code written against either engine catches both; the
// rest carry a code of their own and a message that says what to do.
import { LockTimeoutError } from '../lock/errors.js';
import type { PgLockInspection } from './inspect-types.js';

/** The lock was still held by someone else when the timeout expired. */
export class PgLockTimeoutError extends LockTimeoutError {
  /** The server's view of the lock right after the timeout; null if it could not be inspected. */
  readonly inspection: PgLockInspection | null;

  constructor(name: string, waitedMs: number, detail: string, inspection: PgLockInspection | null) {
    super(`pg:${name}`, waitedMs, detail, null);
    this.inspection = inspection;
  }
}

/** Codes of PgLockError. */
export type PgLockErrorCode =
  | 'ERR_KERNEL_LOCK_PG_LOST'
  | 'ERR_KERNEL_LOCK_PG_POOLER'
  | 'ERR_KERNEL_LOCK_PG_STANDBY'
  | 'ERR_KERNEL_LOCK_PG_VERSION'
  | 'ERR_KERNEL_LOCK_PG_SCHEMA'
  | 'ERR_KERNEL_LOCK_PG_KEY_COLLISION'
  | 'ERR_KERNEL_LOCK_PG_CONNECTION'
  | 'ERR_KERNEL_LOCK_PG_CLOSED'
  | 'ERR_KERNEL_LOCK_PG_MISSING';

/**
 * Everything else the engine reports: a lost session (the reason of a
 * handle's aborted signal), a server it refuses to use (behind a transaction
 * pooler, a standby, too old), a key collision, a connection failure.
 */
export class PgLockError extends Error {
  override readonly name = 'PgLockError';
  readonly code: PgLockErrorCode;

  constructor(code: PgLockErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
