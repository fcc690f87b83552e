// The locks this thread holds, by inode. The kernel is the authority on who
// holds what; this table only answers questions the kernel cannot answer for
// us cheaply: "would this synchronous wait block on ourselves?" and, for
// inspection, "is the holder this very process?".
//
// Cost that stays flat however many locks are held: V8's Map turns slow
// (microseconds per operation with 10,000 entries, measured) when keys are
// deleted and added in a loop: its hash table keeps the holes and keeps
// rebuilding. So an inode whose last lock is released keeps its entry with
// an empty list, and a lock cycle on it touches no table structure at all;
// the empty entries are swept in one pass, into a new Map, once they
// outnumber the live ones (and a minimum), which costs O(1) per release
// amortised and keeps the table at most about twice its live size.
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

/** Empty entries tolerated before a sweep, whatever the live count. */
const MIN_SWEEP = 1024;

let held = new Map<InodeKey, HeldLock[]>();
/** Entries whose list is empty. */
let empty = 0;

let lastDev = -1;
let lastIno = -1;
let lastKey: InodeKey = '';

export function inodeKey(dev: number, ino: number): InodeKey {
  // The same inode again (a lock taken in a loop) reuses its key: no number
  // formatting, and the string's hash is already computed.
  if (dev !== lastDev || ino !== lastIno) {
    lastDev = dev;
    lastIno = ino;
    lastKey = `${dev}:${ino}`;
  }
  return lastKey;
}

/**
 * Notes a lock this thread now holds. Returns the inode's list, for
 * noteReleasedFrom(): a list that holds a lock is never swept, so the
 * release needs no second lookup.
 */
export function noteAcquired(key: InodeKey, lock: HeldLock): HeldLock[] {
  const list = held.get(key);
  if (list === undefined) {
    const created = [lock];
    held.set(key, created);
    return created;
  }
  if (list.length === 0) empty--;
  list.push(lock);
  return list;
}

export function noteReleased(key: InodeKey, lock: HeldLock): void {
  const list = held.get(key);
  if (list !== undefined) noteReleasedFrom(list, lock);
}

/** noteReleased() with the list noteAcquired() returned for the lock. */
export function noteReleasedFrom(list: HeldLock[], lock: HeldLock): void {
  const index = list.indexOf(lock);
  if (index < 0) return;
  // The order of the list means nothing: move the last entry into the hole
  // (splice would allocate an array of the removed entries).
  const lastLock = list.pop()!;
  if (index < list.length) list[index] = lastLock;
  if (list.length > 0) return;
  empty++;
  if (empty > MIN_SWEEP && empty > held.size - empty) sweep();
}

/** Rebuilds the table from its live entries: a new Map has no holes. */
function sweep(): void {
  const live = new Map<InodeKey, HeldLock[]>();
  for (const [key, list] of held) if (list.length > 0) live.set(key, list);
  held = live;
  empty = 0;
}

/** How many handles of this thread hold a lock on the inode. */
export function heldHere(key: InodeKey): number {
  return held.get(key)?.length ?? 0;
}

/** Entries in the table, empty ones included (tests check that it stays bounded). */
export function heldTableSize(): number {
  return held.size;
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
  const list = held.get(key);
  if (list === undefined) return false;
  for (const lock of list) {
    if (lock.kind !== wanted.kind || (lock.mode === 'shared' && wanted.mode === 'shared')) continue;
    if (wanted.kind === 'flock' || overlaps(lock, wanted)) return true;
  }
  return false;
}
