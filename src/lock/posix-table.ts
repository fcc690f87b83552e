// Classic POSIX record locks (F_SETLK) belong to the process, not to a
// descriptor, and closing ANY descriptor of the file drops ALL of the
// process's locks on it (SQLite's os_unix.c calls this "a design error").
// So for kind 'posix' this table keeps one descriptor per inode, defers
// closing every other descriptor opened on that inode until the last user
// is gone, and makes a second in-process acquisition queue for its turn
// instead of silently "succeeding" on a lock the process already owns.

import { onAbort } from './abort-listeners.js';
import { type InodeKey, inodeKey } from './held-locks.js';
import { native, Out, out } from './native.js';

interface Waiter {
  resolve: () => void;
}

interface InodeEntry {
  key: InodeKey;
  /** The descriptor every lock operation on this inode uses. */
  fd: number;
  /** Other descriptors opened on this inode, closed when the entry empties. */
  deferred: number[];
  /** Closers of descriptors opened elsewhere (record reads), run when the entry empties. */
  foreign: (() => void)[];
  /** True while one handle of this process holds (or is acquiring) the lock. */
  busy: boolean;
  queue: Waiter[];
  /** Users (holder, acquirers, queued) still needing the entry. */
  users: number;
}

const entries = new Map<InodeKey, InodeEntry>();

/** Opens `path` and joins (or creates) the entry for its inode. */
export function joinEntry(path: string | Buffer): InodeEntry {
  const fd = native.open(path);
  const key = inodeKey(out[Out.dev]!, out[Out.ino]!);
  let entry = entries.get(key);
  if (entry === undefined) {
    entry = { key, fd, deferred: [], foreign: [], busy: false, queue: [], users: 0 };
    entries.set(key, entry);
  } else {
    // Closing this descriptor now would drop the lock another handle holds.
    entry.deferred.push(fd);
  }
  entry.users++;
  return entry;
}

/** Waits for this process's turn on the inode; resolves true when it is ours. */
export function takeTurn(entry: InodeEntry, signal: AbortSignal | undefined, deadline: number): Promise<boolean> {
  if (!entry.busy) {
    entry.busy = true;
    return Promise.resolve(true);
  }
  // An already-aborted signal never fires 'abort' again: answer now.
  if (signal?.aborted || deadline <= performance.now()) return Promise.resolve(false);
  return new Promise<boolean>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const waiter: Waiter = {
      resolve: () => {
        done();
        resolve(true);
      },
    };
    let unsubscribe: (() => void) | undefined;
    const giveUp = (): void => {
      const index = entry.queue.indexOf(waiter);
      if (index >= 0) entry.queue.splice(index, 1);
      done();
      resolve(false);
    };
    const done = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      unsubscribe?.();
    };
    // Re-checked against the clock: a timer may fire early (libuv's cached
    // loop time), and the turn must not be given up before the deadline.
    const armTimer = (): void => {
      const remaining = deadline - performance.now();
      if (remaining <= 0) giveUp();
      else timer = setTimeout(armTimer, Math.min(Math.ceil(remaining), 0x7fffffff));
    };
    entry.queue.push(waiter);
    if (Number.isFinite(deadline)) armTimer();
    if (signal) unsubscribe = onAbort(signal, giveUp);
  });
}

/** Takes the turn without waiting; false when another handle of this process has it. */
export function takeTurnNow(entry: InodeEntry): boolean {
  if (entry.busy) return false;
  entry.busy = true;
  return true;
}

/** Passes the turn to the next queued acquirer, if any. Returns true if someone took it. */
export function passTurn(entry: InodeEntry): boolean {
  const next = entry.queue.shift();
  if (next === undefined) {
    entry.busy = false;
    return false;
  }
  next.resolve();
  return true;
}

/** True when nobody else in this process uses the entry (so the file may be removed). */
export function isLastUser(entry: InodeEntry): boolean {
  return entry.users === 1 && entry.queue.length === 0;
}

/**
 * Leaves the entry. The last user closes every descriptor of the inode (the
 * shared one last: `closeShared` false means the caller already closed it
 * through native.release).
 */
export function leaveEntry(entry: InodeEntry, closeShared: boolean): void {
  entry.users--;
  if (entry.users > 0) return;
  entries.delete(entry.key);
  for (const fd of entry.deferred) native.close(fd);
  entry.deferred.length = 0;
  for (const close of entry.foreign) close();
  entry.foreign.length = 0;
  if (closeShared) native.close(entry.fd);
}

/**
 * Closes a descriptor opened outside this table (to read an owner record,
 * say) — unless this thread holds posix locks on its inode, because then the
 * close would drop them all: it is closed when the inode's last user leaves.
 */
export function closeUnlessPosixHeld(key: InodeKey, close: () => void): void {
  const entry = entries.get(key);
  if (entry === undefined) close();
  else entry.foreign.push(close);
}

/** The shared descriptor for an inode this process has open for posix locks, if any. */
export function posixDescriptor(key: InodeKey): number | undefined {
  return entries.get(key)?.fd;
}

export type { InodeEntry };
