// In-process bookkeeping of a manager domain: which canonical targets it
// holds, by which kernel lock, for which reentrant owner, with how many
// references. The kernel lock is the exclusion between processes (and
// between acquisitions of one process: each opens its own file); this table
// only adds what fs-safe promises inside a process: owner-scoped reentrancy,
// heldEntries(), drain() and reset().
import type { LockHandle } from '../../lock/handle.js';
import { CompromiseMonitor } from './monitor.js';
import type { LockPaths } from './paths.js';
import { clearRetainedMark } from './retention.js';
import type { SidecarLockCompromisedInfo } from './types.js';

/** What a retainOnExit hold adds: the retention guard it keeps, and the marked label of its record. */
export interface Retention {
  guard: LockHandle;
  label: string;
}

/** One kernel lock held by a domain. */
export interface HeldEntry {
  handle: LockHandle;
  lockPath: string;
  normalizedTargetPath: string;
  reentrantOwner: string | undefined;
  refCount: number;
  acquiredAt: number;
  metadata: Record<string, unknown>;
  monitor: CompromiseMonitor | null;
  /** Set for a retainOnExit hold (retention.ts). */
  retention: Retention | null;
  /** Set once the kernel lock is released; later releases of stale handles do nothing. */
  ended: boolean;
  /** Resolves when the entry ends (waiters for the same target on another lock path sleep on it). */
  done: Promise<void>;
  resolveDone: () => void;
}

/** A manager domain's table. */
export interface DomainState {
  held: Map<string, HeldEntry>;
}

// One table per process and key, even if several copies of this module are
// loaded (ESM and CommonJS builds, a bundled copy): fs-safe keeps its
// managers on globalThis for the same reason.
const DOMAINS_KEY = Symbol.for('kernel-lock.fs-safe.domains');
const global = globalThis as { [DOMAINS_KEY]?: Map<string, DomainState> };
global[DOMAINS_KEY] ??= new Map();
const domains: Map<string, DomainState> = global[DOMAINS_KEY];

/** The table of the domain `key` (created on first use). */
export function domain(key: string): DomainState {
  let state = domains.get(key);
  if (state === undefined) {
    state = { held: new Map() };
    domains.set(key, state);
  }
  return state;
}

/** What the acquisition knows about a freshly granted kernel lock. */
export interface Grant {
  handle: LockHandle;
  paths: LockPaths;
  reentrantOwner: string | undefined;
  metadata: Record<string, unknown>;
  onCompromised: ((info: SidecarLockCompromisedInfo) => void) | undefined;
  /** The options object: onCompromised is called with it as `this`, as fs-safe does. */
  receiver: unknown;
  retention: Retention | null;
}

/** Registers a freshly granted kernel lock (and its compromise monitor, when asked for). */
export function addEntry(state: DomainState, grant: Grant): HeldEntry {
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const { handle, paths } = grant;
  const entry: HeldEntry = {
    handle,
    ...paths,
    reentrantOwner: grant.reentrantOwner,
    refCount: 1,
    acquiredAt: Date.now(),
    metadata: grant.metadata,
    ended: false,
    done,
    resolveDone,
    monitor: null,
    retention: grant.retention,
  };
  if (grant.onCompromised !== undefined) {
    entry.monitor = new CompromiseMonitor(handle, grant.onCompromised, { ...paths }, grant.receiver);
  }
  state.held.set(paths.normalizedTargetPath, entry);
  return entry;
}

/**
 * Ends an entry: a last compromise check, then the kernel lock is released
 * (the file is unlinked while still held, only if it is still ours, so stock
 * fs-safe peers can create theirs). A retainOnExit hold first clears its
 * record's mark, and lets its retention guard go last. Returns true if this
 * call ended it.
 */
export function endEntry(state: DomainState, entry: HeldEntry): boolean {
  if (entry.ended) return false;
  entry.ended = true;
  if (state.held.get(entry.normalizedTargetPath) === entry) state.held.delete(entry.normalizedTargetPath);
  try {
    entry.monitor?.check();
    entry.monitor?.stop();
    if (entry.retention !== null) clearRetainedMark(entry.handle, entry.retention.label);
    entry.handle.releaseSync();
  } finally {
    try {
      entry.retention?.guard.releaseSync();
    } finally {
      entry.resolveDone();
    }
  }
  return true;
}

/** Drops one reference; the last one ends the entry. */
export function dropReference(state: DomainState, entry: HeldEntry): void {
  if (entry.ended) return;
  entry.refCount -= 1;
  if (entry.refCount <= 0) endEntry(state, entry);
}

/** True while the entry holds its kernel lock and its path still names the locked file. */
export function verifyEntry(entry: HeldEntry): boolean {
  if (entry.ended) return false;
  return entry.monitor ? entry.monitor.check() : entry.handle.verify();
}
