// The session locks this process holds, shared by reentrant acquisitions,
// and how they end. Each hold is a fenced lease on `<session>.jsonl.lease`
// plus the marker `<session>.jsonl.lock` (marker.ts). A hold ends by its
// owner's release, by its own watchdog at maxHoldMs (unless it asked for
// `fencing`), or, with `fencing`, by a waiter superseding it past maxHoldMs;
// in the last two cases it is stale: its `signal` aborts with a
// SessionWriteLockStaleError, and assertCurrent() and fenced writes throw it.
import {
  assertCurrent,
  type FencedHold,
  fencedWrite,
  fencedWriteSync,
  followLease,
  type HeldSession,
  isCurrent,
  markStale,
  type SessionMarker,
} from './currency.js';

export type { FencedHold, HeldSession, SessionMarker };

/** A held session write lock, as acquireSessionWriteLock() returns it. */
export interface SessionWriteLock {
  /** Releases this acquisition; the lock goes away at the last one. Safe to call twice. */
  release(): Promise<void>;
  /** The lock file (with an `engine`: the path the file engine would lock; no file is made). */
  readonly lockPath: string;
  /** The engine's lock name (`engine` option; kernel-lock/pg: the advisory lock's name); the lock file otherwise. */
  readonly lockName: string;
  /**
   * Aborted, with a SessionWriteLockStaleError, when the hold is lost without
   * its owner releasing it: its watchdog ended it at maxHoldMs, a waiter
   * superseded it (`fencing: true`), the session's lease file was replaced, or
   * the lock engine lost the lock (`engine`: e.g. its PostgreSQL session ended).
   * A holder that finds it aborted no longer owns the session and must not write.
   */
  readonly signal: AbortSignal;
  /**
   * The hold's fencing token: larger than every token handed out for this
   * session before, by any process, across restarts. Stamp it on what the
   * hold writes elsewhere, so that the receiver can refuse older tokens.
   */
  readonly fencingToken: bigint;
  /**
   * Throws SessionWriteLockStaleError (code OPENCLAW_SESSION_WRITE_LOCK_STALE)
   * unless this hold is current. A check, not a fence: the hold can be
   * superseded right after it returns; write() has no such gap.
   */
  assertCurrent(): void;
  /** assertCurrent() under the runtime's own name for it (the `assertOwned` of its later session locks). */
  assertOwned(): void;
  /**
   * Runs `fn` (the transcript append) only while the hold is current, under
   * the short kernel lock that every takeover also takes: once a successor
   * took over, none of this hold's fenced writes can land. Rejects with
   * SessionWriteLockStaleError when stale. Keep `fn` short: a takeover waits for it.
   */
  write<T>(fn: () => T | Promise<T>): Promise<T>;
  /** Synchronous write(): `fn` must not return a promise. */
  writeSync<T>(fn: () => T): T;
}

/** setTimeout's limit is 2^31 - 1 ms; the runtime's own cap is just below it. */
const MAX_TIMER_MS = 2_147_000_000;

// One table per process, even when several copies of this module are loaded
// (the library, the CLI bundle): reentrancy is a property of the process.
const TABLE_KEY = Symbol.for('kernel-lock.session.held');
const globalTable = globalThis as { [TABLE_KEY]?: Map<string, HeldSession> };
globalTable[TABLE_KEY] ??= new Map();
const heldSessions: Map<string, HeldSession> = globalTable[TABLE_KEY];
// Every hold not yet ended, stale ones included (the table above forgets
// those): what the exit-time cleanup must still close.
const OPEN_KEY = Symbol.for('kernel-lock.session.open');
const globalOpen = globalThis as { [OPEN_KEY]?: Set<HeldSession> };
globalOpen[OPEN_KEY] ??= new Set();
const openHolds: Set<HeldSession> = globalOpen[OPEN_KEY];

function forget(entry: HeldSession): void {
  if (heldSessions.get(entry.key) === entry) heldSessions.delete(entry.key);
}

/** The live, current hold of a session (normalized session file path), if any. */
export function currentHold(key: string): HeldSession | undefined {
  const entry = heldSessions.get(key);
  return entry !== undefined && !entry.ended && isCurrent(entry) ? entry : undefined;
}

function startEnding(entry: HeldSession): SessionMarker | null {
  entry.ended = true;
  if (entry.watchdog !== undefined) clearTimeout(entry.watchdog);
  forget(entry);
  openHolds.delete(entry);
  const marker = entry.marker;
  entry.marker = null;
  return marker;
}

/**
 * Ends a hold: removes the marker if the hold is still current (under the
 * fence, so never a successor's), closes it, then releases the lease. The
 * marker goes first: it must disappear while the lease still says it is ours.
 */
async function endHold(entry: HeldSession): Promise<void> {
  const marker = startEnding(entry);
  if (marker !== null) {
    try {
      await entry.lease.write(() => marker.removeFromPath());
    } catch {
      // Stale: the path belongs to a successor now, or to nobody.
    }
    marker.close();
  }
  markStale(entry, 'released');
  await entry.lease.release();
}

/** endHold() without awaiting: the exit-time path. The marker stays when the fence is not free at once. */
function endHoldSync(entry: HeldSession): void {
  const marker = startEnding(entry);
  if (marker !== null) {
    try {
      entry.lease.writeSync(() => marker.removeFromPath(), { timeout: 0 });
    } catch {
      // Stale, or the fence is busy: leaving a marker of ours is harmless, the next holder takes it.
    }
    marker.close();
  }
  markStale(entry, 'released');
  entry.lease.releaseSync();
}

/** The runtime's watchdog: ends a hold held past maxHoldMs, with its stderr line; the hold is fenced from then on. */
function forceRelease(entry: HeldSession, nowMs: number): Promise<void> {
  if (entry.ended) return Promise.resolve();
  const heldForMs = Math.max(0, Math.round(nowMs - entry.acquiredAt));
  markStale(entry, 'hold-exceeded');
  process.stderr.write(
    `[session-write-lock] releasing lock held for ${heldForMs}ms (max=${entry.maxHoldMs}ms): ${entry.lockPath}\n`,
  );
  return endHold(entry);
}

/** One acquisition's view of a hold: its own release, counted once. */
export function share(entry: HeldSession): SessionWriteLock {
  entry.count += 1;
  let released = false;
  return {
    lockPath: entry.lockPath,
    lockName: entry.lockName,
    signal: entry.controller.signal,
    fencingToken: entry.lease.token,
    assertCurrent: () => assertCurrent(entry),
    assertOwned: () => assertCurrent(entry),
    write: (fn) => fencedWrite(entry, fn),
    writeSync: (fn) => fencedWriteSync(entry, fn),
    async release(): Promise<void> {
      if (released) return;
      released = true;
      // A hold that its watchdog already ended must not touch whatever holds the session now.
      if (entry.ended) return;
      entry.count -= 1;
      if (entry.count === 0) await endHold(entry);
    },
  };
}

/** What an engine's acquisition hands over: a granted lease and its marker. */
export interface Grant {
  key: string;
  lockPath: string;
  lockName: string;
  lease: FencedHold;
  marker: SessionMarker | null;
  maxHoldMs: number;
  fencing: boolean;
  /**
   * A lock engine's signal (the `engine` option), aborted when the engine
   * lost the lock: the hold becomes stale (cause `lost`) and ends at once.
   */
  lost?: AbortSignal;
}

/** An engine lost the lock: the hold is stale from now on (fail closed), and its remains are given back. */
function followEngine(entry: HeldSession, lost: AbortSignal): void {
  const onLost = (): void => {
    if (entry.ended) return;
    markStale(entry, 'lost', lost.reason);
    void endHold(entry).catch(() => {});
  };
  if (lost.aborted) onLost();
  else lost.addEventListener('abort', onLost, { once: true });
}

/** Records a newly granted hold and arms its watchdog (without `fencing`); returns the first acquisition's view. */
export function hold(grant: Grant): SessionWriteLock {
  const { lost, ...granted } = grant;
  const entry: HeldSession = {
    ...granted,
    count: 0,
    acquiredAt: Date.now(),
    watchdog: undefined,
    controller: new AbortController(),
    ended: false,
    stale: null,
    onStale: forget,
  };
  if (!grant.fencing) {
    entry.watchdog = setTimeout(
      () => void forceRelease(entry, Date.now()).catch(() => {}),
      Math.min(grant.maxHoldMs, MAX_TIMER_MS),
    );
    entry.watchdog.unref();
  }
  followLease(entry);
  // With allowReentrant false two acquisitions of this process can hold in
  // turn; the table names the latest, which is the one reentrancy joins.
  heldSessions.set(grant.key, entry);
  openHolds.add(entry);
  const first = share(entry);
  if (lost !== undefined) followEngine(entry, lost);
  return first;
}

/** The runtime's watchdog pass: force-releases every hold older than its maxHoldMs at `nowMs`; returns how many. */
export async function runLockWatchdogCheck(nowMs = Date.now()): Promise<number> {
  let released = 0;
  for (const entry of [...heldSessions.values()]) {
    if (nowMs - entry.acquiredAt <= entry.maxHoldMs) continue;
    await forceRelease(entry, nowMs);
    released += 1;
  }
  return released;
}

/** Releases every session lock this process holds, stale ones included, synchronously (the runtime's exit-time cleanup); aborts their signals. */
export function releaseAllLocksSync(): void {
  for (const entry of [...openHolds]) {
    if (entry.stale === null) {
      markStale(entry, 'released');
      entry.controller.abort(entry.stale);
    }
    endHoldSync(entry);
  }
}
