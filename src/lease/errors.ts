// The errors of the lease layer: the stale error a superseded, released or
// displaced holder gets, and the refusal to use someone else's file.
import { systemError } from '../lock/errors.js';

/** Error code of LeaseStaleError. */
export const ELEASESTALE = 'ELEASESTALE';

/**
 * Why a lease is no longer current:
 * - `superseded`: another holder took the lease over after `takeoverAfter` (its token is larger);
 * - `released`: this lease was released;
 * - `replaced`: the lock file was removed or replaced, so the token this lease carries no longer fences anything.
 */
export type LeaseStaleReason = 'superseded' | 'released' | 'replaced';

/** Thrown by `assertCurrent()`, `write()` and `writeSync()` once a lease is no longer current; also the reason of its `signal`. */
export class LeaseStaleError extends Error {
  override readonly name = 'LeaseStaleError';
  readonly code = ELEASESTALE;
  /** The lock file. */
  readonly path: string;
  /** The token of the stale lease. */
  readonly token: bigint;
  /** The token that superseded it, when known (reason `superseded`). */
  readonly currentToken: bigint | null;
  readonly reason: LeaseStaleReason;

  constructor(path: string, token: bigint, reason: LeaseStaleReason, currentToken: bigint | null = null) {
    super(`lease ${token} is stale (${explain(reason, currentToken)}): ${path}`);
    this.path = path;
    this.token = token;
    this.reason = reason;
    this.currentToken = currentToken;
  }
}

function explain(reason: LeaseStaleReason, currentToken: bigint | null): string {
  switch (reason) {
    case 'superseded':
      return currentToken === null ? 'superseded' : `superseded by lease ${currentToken}`;
    case 'released':
      return 'released';
    case 'replaced':
      return 'the lock file was removed or replaced';
  }
}

/** Error code of the refusal to lease a file that holds other data. */
export const ENOTLEASEFILE = 'ERR_KERNEL_LOCK_NOT_A_LOCK_FILE';

/** The file at the lease path holds data that is not kernel-lock's: nothing was written. */
export function foreignFileError(display: string, size: number): Error & { code: string; path: string } {
  const error = new Error(
    `kernel-lock: ${display} holds ${size} bytes that are not a kernel-lock record, so it is not leased: ` +
      'a lease writes its fencing token into its lock file, and kernel-lock never writes into a file that holds ' +
      `someone else's data. Lease a file of its own, e.g. ${display}.lock`,
  ) as Error & { code: string; path: string };
  error.code = ENOTLEASEFILE;
  error.path = display;
  return error;
}

/** The lock file cannot be written (read-only file or file system): a lease needs to write its token. */
export function notWritableError(errno: number, display: string): Error {
  const error = systemError(errno, 'open', display);
  error.message =
    `${error.code}: ${display} can only be opened read-only, and a lease writes its fencing token into its lock file; ` +
    'make the file writable or lease a file in a writable directory';
  return error;
}

/** The token slot holds bytes that are not a slot (damage, or a foreign writer): fail closed. */
export function damagedSlotError(display: string): Error & { code: string; path: string } {
  const error = new Error(
    `kernel-lock: the token slot of ${display} (bytes 4096-4223) is damaged, so the next token cannot be known to be ` +
      'larger than every earlier one; no lease is granted on it. Inspect the file; if every earlier holder is gone ' +
      'and the fenced resource accepts a fresh start, lease a new file',
  ) as Error & { code: string; path: string };
  error.code = 'ERR_KERNEL_LOCK_LEASE_DAMAGED';
  error.path = display;
  return error;
}
