// The session locks this process holds, shared by reentrant acquisitions,
// and their watchdog. The runtime sweeps every 60 s and force-releases locks
// held past maxHoldMs; here each lock has its own timer, so a hung holder
// loses the lock at exactly maxHoldMs, and its `signal` is aborted so a run
// that checks it before writing knows it no longer owns the session.
import type { LockHandle } from '../lock/handle.js';

/** One kernel lock held by this process, shared by reentrant acquisitions. */
export interface HeldSession {
  key: string;
  lockPath: string;
  handle: LockHandle;
  count: number;
  /** Date.now() at grant: the runtime's watchdog arithmetic (runLockWatchdogCheck(nowMs)). */
  acquiredAt: number;
  maxHoldMs: number;
  watchdog: NodeJS.Timeout | undefined;
  controller: AbortController;
  /** Set once the kernel lock is gone (last release or watchdog); later releases do nothing. */
  ended: boolean;
}

/** A held session write lock, as acquireSessionWriteLock() returns it. */
export interface SessionWriteLock {
  /** Releases this acquisition; the lock goes away at the last one. Safe to call twice. */
  release(): Promise<void>;
  /** The lock file. */
  readonly lockPath: string;
  /**
   * Aborted when the watchdog force-released the lock (held past maxHoldMs).
   * A holder that finds it aborted no longer owns the session and must not
   * write: check it before each append.
   */
  readonly signal: AbortSignal;
}

/** setTimeout's limit is 2^31 - 1 ms; the runtime's own cap is just below it. */
const MAX_TIMER_MS = 2_147_000_000;

// One table per process, even when several copies of this module are loaded
// (the library, the CLI bundle): reentrancy is a property of the process.
const TABLE_KEY = Symbol.for('kernel-lock.session.held');
const globalTable = globalThis as { [TABLE_KEY]?: Map<string, HeldSession> };
globalTable[TABLE_KEY] ??= new Map();
const heldSessions: Map<string, HeldSession> = globalTable[TABLE_KEY];

/** The live hold of a session (normalized session file path), if any. */
export function currentHold(key: string): HeldSession | undefined {
  const entry = heldSessions.get(key);
  return entry !== undefined && !entry.ended ? entry : undefined;
}

function endHold(entry: HeldSession): void {
  entry.ended = true;
  if (entry.watchdog !== undefined) clearTimeout(entry.watchdog);
  if (heldSessions.get(entry.key) === entry) heldSessions.delete(entry.key);
  // Unlinks the file while still holding the lock, then closes: a waiter
  // woken on the old inode sees it was unlinked and starts over.
  entry.handle.releaseSync();
}

/** Force-releases a hold with the runtime's watchdog line on stderr, and aborts its signal. */
function forceRelease(entry: HeldSession, nowMs: number): void {
  if (entry.ended) return;
  const heldForMs = Math.max(0, Math.round(nowMs - entry.acquiredAt));
  endHold(entry);
  process.stderr.write(
    `[session-write-lock] releasing lock held for ${heldForMs}ms (max=${entry.maxHoldMs}ms): ${entry.lockPath}\n`,
  );
  entry.controller.abort(
    new Error(`session lock force-released after ${heldForMs}ms (maxHoldMs=${entry.maxHoldMs}): ${entry.lockPath}`),
  );
}

/** One acquisition's view of a hold: its own release, counted once. */
export function share(entry: HeldSession): SessionWriteLock {
  entry.count += 1;
  let released = false;
  return {
    lockPath: entry.lockPath,
    signal: entry.controller.signal,
    async release(): Promise<void> {
      if (released) return;
      released = true;
      // A handle whose lock the watchdog already took away must not touch
      // whatever holds the session now: its entry is ended and forgotten.
      if (entry.ended) return;
      entry.count -= 1;
      if (entry.count === 0) endHold(entry);
    },
  };
}

/** Records a newly granted lock and arms its watchdog; returns the first acquisition's view. */
export function hold(key: string, lockPath: string, handle: LockHandle, maxHoldMs: number): SessionWriteLock {
  const entry: HeldSession = {
    key,
    lockPath,
    handle,
    count: 0,
    acquiredAt: Date.now(),
    maxHoldMs,
    watchdog: undefined,
    controller: new AbortController(),
    ended: false,
  };
  entry.watchdog = setTimeout(() => forceRelease(entry, Date.now()), Math.min(maxHoldMs, MAX_TIMER_MS));
  entry.watchdog.unref();
  // With allowReentrant false two acquisitions of this process can hold in
  // turn; the table names the latest, which is the one reentrancy joins.
  heldSessions.set(key, entry);
  return share(entry);
}

/** The runtime's watchdog pass: force-releases every hold older than its maxHoldMs at `nowMs`; returns how many. */
export async function runLockWatchdogCheck(nowMs = Date.now()): Promise<number> {
  let released = 0;
  for (const entry of [...heldSessions.values()]) {
    if (nowMs - entry.acquiredAt <= entry.maxHoldMs) continue;
    forceRelease(entry, nowMs);
    released += 1;
  }
  return released;
}

/** Releases every session lock this process holds, synchronously (the runtime's exit-time cleanup). */
export function releaseAllLocksSync(): void {
  for (const entry of [...heldSessions.values()]) {
    endHold(entry);
    entry.controller.abort(new Error(`session lock released by releaseAllLocksSync(): ${entry.lockPath}`));
  }
}
