// The error a session writer gets once its hold is no longer current: the
// runtime's SessionWriteLockStaleError (src/agents/session-write-lock-error.ts
// since openclaw 2026.5: same class name, `code`, fields and message), which
// its later generations throw at writers whose lease was lost
// (staleReasons ["lease-lost"]). kernel-lock throws it from assertCurrent(),
// assertOwned(), write() and writeSync(), and aborts the lock's `signal` with
// it, adding the fencing tokens involved.
import { isSessionWriteLockTimeoutError } from './error.js';

/** The `code` of a stale session lock, as the runtime defines it. */
export const SESSION_WRITE_LOCK_STALE_CODE = 'OPENCLAW_SESSION_WRITE_LOCK_STALE';

/**
 * Why a hold is no longer current. The first reason of every stale error
 * kernel-lock throws is the runtime's `lease-lost`; the second says how:
 * - `superseded`: a waiter took the session over after this hold's maxHoldMs (it asked for `fencing: true`);
 * - `hold-exceeded`: this process's own watchdog ended the hold at maxHoldMs;
 * - `released`: this hold was released (by its owner, or by releaseAllLocksSync and the test helpers);
 * - `replaced`: the session's lease file was removed or replaced by hand, so its token no longer fences anything;
 * - `lost`: the lock engine lost the lock (`engine` option; kernel-lock/pg: the PostgreSQL session ended, was
 *   terminated, or stopped answering within its loss deadline), so the engine no longer vouches for it.
 */
export type SessionStaleCause = 'superseded' | 'hold-exceeded' | 'released' | 'replaced' | 'lost';

/** What the runtime's constructor takes. */
export interface SessionWriteLockStaleParams {
  /** Who or what holds the session now, in words. */
  owner: string;
  lockPath: string;
  staleReasons?: string[];
}

/** A session write lock that is stale: the runtime's class, plus the fencing tokens when kernel-lock throws it. */
export class SessionWriteLockStaleError extends Error {
  /** Always OPENCLAW_SESSION_WRITE_LOCK_STALE: the runtime classifies errors by it. */
  readonly code = SESSION_WRITE_LOCK_STALE_CODE;
  /** Who or what holds the session now, in words. */
  readonly owner: string;
  /** The session's lock file. */
  readonly lockPath: string;
  /** Why: `["lease-lost", <SessionStaleCause>]` when kernel-lock throws it. */
  readonly staleReasons: string[];
  /** The fencing token of the stale hold (set by kernel-lock). */
  declare readonly fencingToken?: bigint;
  /** The token that superseded it, when known (set by kernel-lock). */
  declare readonly currentToken?: bigint | null;

  constructor(params: SessionWriteLockStaleParams) {
    const staleReasons = params.staleReasons?.length ? [...params.staleReasons] : ['unknown'];
    super(`session file lock stale (${staleReasons.join(', ')}): ${params.owner} ${params.lockPath}`);
    this.name = 'SessionWriteLockStaleError';
    this.owner = params.owner;
    this.lockPath = params.lockPath;
    this.staleReasons = staleReasons;
  }
}

function describeCause(
  cause: SessionStaleCause,
  facts: { token: bigint; current: bigint | null; maxHoldMs: number; source?: unknown },
): string {
  switch (cause) {
    case 'superseded':
      return facts.current === null
        ? `superseded (fencing token ${facts.token} is stale)`
        : `superseded by fencing token ${facts.current} (this hold has ${facts.token})`;
    case 'hold-exceeded':
      return `held past maxHoldMs=${facts.maxHoldMs} and ended by its watchdog (fencing token ${facts.token})`;
    case 'released':
      return `released (fencing token ${facts.token})`;
    case 'replaced':
      return `the session's lease file was removed or replaced (fencing token ${facts.token})`;
    case 'lost': {
      const why = facts.source instanceof Error ? `: ${facts.source.message}` : '';
      return `lost by its lock engine (fencing token ${facts.token})${why}`;
    }
  }
}

/** The stale error of a kernel-lock hold. */
export function staleError(
  lockPath: string,
  cause: SessionStaleCause,
  facts: { token: bigint; current: bigint | null; maxHoldMs: number; source?: unknown },
): SessionWriteLockStaleError {
  const error = new SessionWriteLockStaleError({
    owner: describeCause(cause, facts),
    lockPath,
    staleReasons: ['lease-lost', cause],
  });
  Object.defineProperty(error, 'fencingToken', { value: facts.token, enumerable: true });
  Object.defineProperty(error, 'currentToken', { value: facts.current, enumerable: true });
  if (facts.source !== undefined)
    Object.defineProperty(error, 'cause', { value: facts.source, writable: true, configurable: true });
  return error;
}

/** True for a stale session lock: an instance, or any object carrying its code (the runtime's own test). */
export function isSessionWriteLockStaleError(err: unknown): boolean {
  return (
    err instanceof SessionWriteLockStaleError ||
    Boolean(err && typeof err === 'object' && (err as { code?: unknown }).code === SESSION_WRITE_LOCK_STALE_CODE)
  );
}

/** True for either failure of a session lock: a timeout or a stale hold (the runtime's classifier). */
export function isSessionWriteLockAcquireError(err: unknown): boolean {
  return isSessionWriteLockTimeoutError(err) || isSessionWriteLockStaleError(err);
}
