// Whether a session hold is still current, in the runtime's words: the
// lease layer's LeaseStaleError becomes the runtime's
// SessionWriteLockStaleError (code OPENCLAW_SESSION_WRITE_LOCK_STALE), the
// hold's `signal` is aborted with it, and a stale hold leaves the table of
// held sessions so that a reentrant acquisition never joins it.
import { LeaseStaleError } from '../lease/errors.js';
import { type SessionStaleCause, type SessionWriteLockStaleError, staleError } from './stale-error.js';

/**
 * Thrown by a hold on a lock engine (the `engine` option: kernel-lock/pg)
 * once the engine no longer vouches for its lock; `cause` is the engine's
 * reason. It becomes SessionWriteLockStaleError with cause `lost`.
 */
export class EngineLockLostError extends Error {
  override readonly name = 'EngineLockLostError';
}

/**
 * What a hold needs from its engine: a fenced lease (src/lease/ on files;
 * any engine whose stale holds throw LeaseStaleError or EngineLockLostError fits).
 */
export interface FencedHold {
  readonly token: bigint;
  /** Aborted (reason: a LeaseStaleError) when superseded, released or replaced. */
  readonly signal: AbortSignal;
  assertCurrent(): void;
  write<T>(fn: () => T | Promise<T>): Promise<T>;
  writeSync<T>(fn: () => T, options?: { timeout?: number }): T;
  release(): Promise<void>;
  releaseSync(): void;
}

/** What an engine keeps beside the lease for the runtime's other readers (the `.jsonl.lock` file on files). */
export interface SessionMarker {
  /** Takes it off its path; called under the lease's fence, only while the hold is current. */
  removeFromPath(): void;
  /** Drops it, leaving the path alone. */
  close(): void;
}

/** One session held by this process (through a fenced lease and its marker), shared by reentrant acquisitions. */
export interface HeldSession {
  key: string;
  lockPath: string;
  /** The lock engine's name for the session (the lock file, on files). */
  lockName: string;
  lease: FencedHold;
  /** The session's lock file as old-version processes and `kernel-lock status` see it; null once closed (or none). */
  marker: SessionMarker | null;
  count: number;
  /** Date.now() at grant: the runtime's watchdog arithmetic (runLockWatchdogCheck(nowMs)). */
  acquiredAt: number;
  maxHoldMs: number;
  /** Whether a waiter may supersede this hold past maxHoldMs (the caller fences its writes). */
  fencing: boolean;
  watchdog: NodeJS.Timeout | undefined;
  /** The lock's `signal`: aborted when the hold is lost without its owner releasing it. */
  controller: AbortController;
  /** Set once its owner (or a force-release) started releasing it; later releases do nothing. */
  ended: boolean;
  /** Why the hold is no longer current; null while it is. */
  stale: SessionWriteLockStaleError | null;
  /** Called once when the hold becomes stale (the table forgets it). */
  onStale: (entry: HeldSession) => void;
}

/** Marks the hold stale (once) and, unless its owner released it, aborts its signal with the error. */
export function markStale(entry: HeldSession, cause: SessionStaleCause, source?: unknown): SessionWriteLockStaleError {
  if (entry.stale === null) {
    const current = source instanceof LeaseStaleError ? source.currentToken : null;
    entry.stale = staleError(entry.lockPath, cause, {
      token: entry.lease.token,
      current,
      maxHoldMs: entry.maxHoldMs,
      source,
    });
    if (cause !== 'released') entry.controller.abort(entry.stale);
    entry.onStale(entry);
  }
  return entry.stale;
}

function causeOf(error: LeaseStaleError): SessionStaleCause {
  return error.reason === 'released' ? 'released' : error.reason;
}

/** The runtime's error for a LeaseStaleError of this hold's lease; anything else passes through. */
export function translate(entry: HeldSession, error: unknown): unknown {
  if (error instanceof EngineLockLostError) return markStale(entry, 'lost', error.cause);
  if (!(error instanceof LeaseStaleError) || error.token !== entry.lease.token) return error;
  return markStale(entry, causeOf(error), error);
}

/** Throws SessionWriteLockStaleError unless the hold is current (one read of the lease's token slot). */
export function assertCurrent(entry: HeldSession): void {
  if (entry.stale !== null) throw entry.stale;
  try {
    entry.lease.assertCurrent();
  } catch (error) {
    throw translate(entry, error);
  }
}

/** Whether the hold is current, without throwing. */
export function isCurrent(entry: HeldSession): boolean {
  if (entry.stale !== null) return false;
  try {
    assertCurrent(entry);
    return true;
  } catch {
    return false;
  }
}

/** Runs `fn` under the lease's fence while the hold is current (see Lease#write). */
export async function fencedWrite<T>(entry: HeldSession, fn: () => T | Promise<T>): Promise<T> {
  if (entry.stale !== null) throw entry.stale;
  try {
    return await entry.lease.write(fn);
  } catch (error) {
    throw translate(entry, error);
  }
}

/** Synchronous fencedWrite() (see Lease#writeSync). */
export function fencedWriteSync<T>(entry: HeldSession, fn: () => T): T {
  if (entry.stale !== null) throw entry.stale;
  try {
    return entry.lease.writeSync(fn);
  } catch (error) {
    throw translate(entry, error);
  }
}

/** Follows the lease's own signal: a supersession or a replaced file makes the hold stale at once. */
export function followLease(entry: HeldSession): void {
  const signal = entry.lease.signal;
  const onAbort = (): void => {
    const reason = signal.reason;
    // Its own release is handled by whoever released it.
    if (reason instanceof LeaseStaleError && reason.reason !== 'released') markStale(entry, causeOf(reason), reason);
  };
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
}
