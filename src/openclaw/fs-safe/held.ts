// In-process bookkeeping of a manager domain: which canonical targets it
// holds, by which kernel lock, for which reentrant owner, with how many
// references. The kernel lock is the exclusion between processes (and
// between acquisitions of one process: each opens its own file); this table
// only adds what fs-safe promises inside a process: owner-scoped reentrancy,
// heldEntries(), drain() and reset().
import type { LockHandle } from '../../lock/handle.js';
import type { CompromiseMonitor } from './monitor.js';

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

/** Registers a freshly granted kernel lock. */
export function addEntry(
  state: DomainState,
  init: Omit<HeldEntry, 'refCount' | 'ended' | 'done' | 'resolveDone' | 'monitor'>,
): HeldEntry {
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => {
    resolveDone = resolve;
  });
  const entry: HeldEntry = { ...init, refCount: 1, ended: false, done, resolveDone, monitor: null };
  state.held.set(init.normalizedTargetPath, entry);
  return entry;
}

/**
 * Ends an entry: a last compromise check, then the kernel lock is released
 * (the file is unlinked while still held, only if it is still ours, so stock
 * fs-safe peers can create theirs). Returns true if this call ended it.
 */
export function endEntry(state: DomainState, entry: HeldEntry): boolean {
  if (entry.ended) return false;
  entry.ended = true;
  if (state.held.get(entry.normalizedTargetPath) === entry) state.held.delete(entry.normalizedTargetPath);
  try {
    entry.monitor?.check();
    entry.monitor?.stop();
    entry.handle.releaseSync();
  } finally {
    entry.resolveDone();
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
