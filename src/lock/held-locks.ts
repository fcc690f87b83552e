// The locks this thread holds, by inode. The kernel is the authority on who
// holds what; this table only answers questions the kernel cannot answer for
// us cheaply: "would this synchronous wait block on ourselves?" and, for
// inspection, "is the holder this very process?".
import type { LockKind, LockMode } from '../proc/proc-locks.js';

/** Key of an inode: "dev:ino". */
export type InodeKey = string;

/** One lock a handle of this thread holds. */
export interface HeldLock {
  kind: LockKind;
  mode: LockMode;
  start: number;
  /** 0 means to the end of the file, as fcntl(2) defines it. */
  length: number;
}

const held = new Map<InodeKey, HeldLock[]>();

export function inodeKey(dev: number, ino: number): InodeKey {
  return `${dev}:${ino}`;
}

export function noteAcquired(key: InodeKey, lock: HeldLock): void {
  const list = held.get(key);
  if (list === undefined) held.set(key, [lock]);
  else list.push(lock);
}

export function noteReleased(key: InodeKey, lock: HeldLock): void {
  const list = held.get(key);
  if (list === undefined) return;
  const index = list.indexOf(lock);
  if (index >= 0) list.splice(index, 1);
  if (list.length === 0) held.delete(key);
}

/** How many handles of this thread hold a lock on the inode. */
export function heldHere(key: InodeKey): number {
  return held.get(key)?.length ?? 0;
}

function overlaps(a: HeldLock, b: HeldLock): boolean {
  const aEnd = a.length === 0 ? Number.POSITIVE_INFINITY : a.start + a.length;
  const bEnd = b.length === 0 ? Number.POSITIVE_INFINITY : b.start + b.length;
  return a.start < bEnd && b.start < aEnd;
}

/**
 * True when a handle of this thread holds a lock that `wanted` conflicts
 * with: a synchronous wait for it would block the only thread that can
 * release it. flock and OFD locks are separate in the kernel; posix locks
 * never conflict within a process (their turns are kept by the posix table).
 */
export function conflictsHere(key: InodeKey, wanted: HeldLock): boolean {
  for (const lock of held.get(key) ?? []) {
    if (lock.kind !== wanted.kind || (lock.mode === 'shared' && wanted.mode === 'shared')) continue;
    if (wanted.kind === 'flock' || overlaps(lock, wanted)) return true;
  }
  return false;
}
