// Acquisition for kind 'posix'. Classic fcntl locks belong to the process,
// so this thread takes turns per inode (posix-table.ts) before asking the
// kernel, and every failure path unlocks explicitly instead of closing: the
// inode's one descriptor stays open for the next acquirer in the queue.
import {
  finish,
  kernelWait,
  makeHandle,
  recordFor,
  timeoutError,
  timeoutErrorSync,
  unlockQuietly,
} from './acquire-steps.js';
import { abortError, fromNative, selfDeadlockError } from './errors.js';
import type { LockHandle } from './handle.js';
import { native, Out, out } from './native.js';
import type { LockRequest } from './options.js';
import { type InodeEntry, joinEntry, leaveEntry, passTurn, takeTurn, takeTurnNow } from './posix-table.js';

export async function lockPosix(req: LockRequest): Promise<LockHandle> {
  const started = performance.now();
  const deadline = started + req.timeout;
  for (;;) {
    let entry: InodeEntry;
    try {
      entry = joinEntry(req.path);
    } catch (error) {
      throw fromNative(error, req.display);
    }
    const readOnly = out[Out.readOnly]!;
    let ourTurn = false;
    let locked = false;
    let handed = false;
    try {
      ourTurn = await takeTurn(entry, req.signal, deadline);
      if (!ourTurn) {
        if (req.signal?.aborted) throw abortError(req.signal, req.display);
        throw await timeoutError(req, started);
      }
      try {
        locked = native.tryLock(entry.fd, req.flags, req.start, req.length);
      } catch (error) {
        throw fromNative(error, req.display);
      }
      if (!locked) {
        if (req.timeout === 0) throw await timeoutError(req, started);
        await kernelWait(req, entry.fd, started, () => native.unlock(entry.fd, req.flags, req.start, req.length));
        locked = true;
      }
      if (finish(req, entry.fd, readOnly, recordFor(req))) {
        handed = true;
        return makeHandle(req, entry.fd, readOnly, entry);
      }
    } finally {
      if (!handed) {
        // The descriptor may stay open for queued acquirers of this process,
        // so closing it is not enough to drop a lock we took.
        if (locked) unlockQuietly(entry.fd, req);
        leaveEntry(entry, true);
        if (ourTurn) passTurn(entry);
      }
    }
  }
}

export function tryLockPosix(req: LockRequest): LockHandle | null {
  let entry: InodeEntry;
  try {
    entry = joinEntry(req.path);
  } catch (error) {
    throw fromNative(error, req.display);
  }
  const readOnly = out[Out.readOnly]!;
  let ourTurn = false;
  let locked = false;
  let handed = false;
  try {
    ourTurn = takeTurnNow(entry);
    if (!ourTurn) return null;
    let granted: boolean;
    try {
      granted = native.tryLock(entry.fd, req.flags, req.start, req.length);
    } catch (error) {
      throw fromNative(error, req.display);
    }
    if (!granted) return null;
    locked = true;
    if (finish(req, entry.fd, readOnly, recordFor(req))) {
      handed = true;
      return makeHandle(req, entry.fd, readOnly, entry);
    }
    // Replaced between open and lock by a releasing holder: it was busy.
    return null;
  } finally {
    if (!handed) {
      if (locked) unlockQuietly(entry.fd, req);
      leaveEntry(entry, true);
      if (ourTurn) passTurn(entry);
    }
  }
}

export function lockSyncPosix(req: LockRequest): LockHandle {
  const started = performance.now();
  for (;;) {
    let entry: InodeEntry;
    try {
      entry = joinEntry(req.path);
    } catch (error) {
      throw fromNative(error, req.display);
    }
    const readOnly = out[Out.readOnly]!;
    let ourTurn = false;
    let locked = false;
    let handed = false;
    try {
      ourTurn = takeTurnNow(entry);
      if (!ourTurn) {
        if (req.timeout === 0) throw timeoutErrorSync(req, started);
        throw selfDeadlockError(req.display);
      }
      locked = native.tryLock(entry.fd, req.flags, req.start, req.length);
      if (!locked) {
        if (req.timeout === 0) throw timeoutErrorSync(req, started);
        const remaining = Math.max(0, req.timeout - (performance.now() - started));
        // A cancelled wait may still have been granted in the race with the
        // deadline: unlock in any case before reporting the timeout.
        locked = true;
        if (native.waitSync(entry.fd, req.flags, req.start, req.length, remaining) !== 0) {
          throw timeoutErrorSync(req, started);
        }
      }
      if (finish(req, entry.fd, readOnly, recordFor(req))) {
        handed = true;
        return makeHandle(req, entry.fd, readOnly, entry);
      }
    } catch (error) {
      throw fromNative(error, req.display);
    } finally {
      if (!handed) {
        if (locked) unlockQuietly(entry.fd, req);
        leaveEntry(entry, true);
        if (ourTurn) passTurn(entry);
      }
    }
  }
}
