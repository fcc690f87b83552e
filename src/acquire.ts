// lock(), tryLock(), lockSync() and withLock().
//
// The uncontended path is one native call on the calling thread: open, a
// non-blocking lock, verification, owner record. Only when the lock is busy
// does a wait start, on a dedicated native thread that sleeps in the kernel
// (native/waiter.cc); the kernel wakes it when the holder releases or dies.
// A timeout or an AbortSignal interrupts that thread; a lock granted in the
// race with the cancellation is dropped at once.

import { onAbort } from './abort-listeners.js';
import { abortError, fromNative, LockTimeoutError, selfDeadlockError, systemError } from './errors.js';
import { LockHandle } from './handle.js';
import { heldHere, inodeKey, noteAcquired } from './held-locks.js';
import { describeHolder, describeHolderSync } from './holder.js';
import { Flag, native, Out, out } from './native.js';
import { type LockOptions, type LockRequest, normalizeOptions } from './options.js';
import { formatRecord } from './owner-record.js';
import { type InodeEntry, joinEntry, leaveEntry, passTurn, takeTurn, takeTurnNow } from './posix-table.js';

/** Options of tryLock(): one attempt, so no timeout and nothing to abort. */
export type TryLockOptions = Omit<LockOptions, 'timeout' | 'signal'>;
/** Options of lockSync(): it blocks the thread, so it cannot be aborted. */
export type LockSyncOptions = Omit<LockOptions, 'signal'>;

/** setTimeout's longest delay; longer timeouts re-arm. */
const MAX_TIMER_MS = 0x7fffffff;
/** EINTR: reported if the native layer says "cancelled" although nobody cancelled. */
const CANCELLED_ERRNO = 4;

function recordFor(req: LockRequest): string | undefined {
  return req.mode === 'exclusive' ? formatRecord(req.kind, req.mode, req.owner) : undefined;
}

function syscallOf(req: LockRequest): string {
  return req.kind === 'flock' ? 'flock' : 'fcntl';
}

/**
 * `readOnly` is 0 for a writable descriptor, else the errno (EACCES, EROFS)
 * that made the library fall back to a read-only one: that errno, not the
 * write that was never attempted, is why the owner record is missing.
 */
function makeHandle(req: LockRequest, fd: number, readOnly: number, posix?: InodeEntry): LockHandle {
  const key = inodeKey(out[Out.dev]!, out[Out.ino]!);
  noteAcquired(key);
  const recordErrno = readOnly !== 0 && req.mode === 'exclusive' ? readOnly : out[Out.recordErr]!;
  const init = { request: req, fd, key, readOnly: readOnly !== 0, recordErrno };
  return new LockHandle(posix ? { ...init, posix } : init);
}

/** One native acquisition attempt; returns the native result code. */
function attempt(req: LockRequest, record: string | undefined, keepOnBusy: boolean): number {
  try {
    return native.acquire(req.path, req.flags | (keepOnBusy ? Flag.keepOnBusy : 0), req.start, req.length, record);
  } catch (error) {
    throw fromNative(error, req.display);
  }
}

async function timeoutError(req: LockRequest, started: number): Promise<LockTimeoutError> {
  const waited = performance.now() - started; // before the inspection, which takes time of its own
  const { detail, holder } = await describeHolder(req);
  return new LockTimeoutError(req.display, waited, detail, holder);
}

/**
 * Waits in the kernel for the lock on `fd`. Resolves when granted. Rejects
 * with LockTimeoutError, AbortError or a system error; before rejecting it
 * calls `abandon()`, which must drop any lock the kernel granted in the race
 * with the cancellation.
 */
function kernelWait(req: LockRequest, fd: number, started: number, abandon: () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let cancelled: 'timeout' | 'abort' | null = null;
    let timer: NodeJS.Timeout | undefined;
    let id = 0;
    let unsubscribe: (() => void) | undefined;
    const cancel = (why: 'timeout' | 'abort'): void => {
      cancelled ??= why;
      native.cancelWait(id);
    };
    // setTimeout measures from libuv's cached loop time, which lags behind
    // when the loop is busy, so a timer can fire a little early: re-check
    // against the clock and re-arm, so a wait never gives up before its
    // deadline. Also re-arms past setTimeout's longest delay.
    const armTimer = (): void => {
      const remaining = req.timeout - (performance.now() - started);
      if (remaining <= 0) cancel('timeout');
      else timer = setTimeout(armTimer, Math.min(Math.ceil(remaining), MAX_TIMER_MS));
    };
    const onDone = (status: number): void => {
      if (timer !== undefined) clearTimeout(timer);
      unsubscribe?.();
      if (status === 0 && cancelled === null) {
        resolve();
        return;
      }
      // Granted in the race with the cancellation, or failed: either way
      // drop whatever the kernel gave us before reporting.
      abandon();
      if (cancelled === 'abort') reject(abortError(req.signal!, req.display));
      else if (cancelled === 'timeout') timeoutError(req, started).then(reject, reject);
      else reject(systemError(status > 0 ? status : CANCELLED_ERRNO, syscallOf(req), req.display));
    };
    // A retry (the file was replaced while we waited) can begin after the
    // signal fired; an 'abort' listener added now would never run.
    if (req.signal?.aborted) {
      abandon();
      reject(abortError(req.signal, req.display));
      return;
    }
    try {
      id = native.wait(fd, req.flags, req.start, req.length, onDone);
    } catch (error) {
      abandon();
      reject(fromNative(error, req.display));
      return;
    }
    if (Number.isFinite(req.timeout)) armTimer();
    if (req.signal) unsubscribe = onAbort(req.signal, () => cancel('abort'));
  });
}

/** Finishes a granted wait: false when the file was replaced and the caller must start over. */
function finish(req: LockRequest, fd: number, readOnly: number, record: string | undefined): boolean {
  try {
    return native.finish(fd, req.path, req.flags | (readOnly !== 0 ? Flag.readOnly : 0), req.start, req.length, record);
  } catch (error) {
    throw fromNative(error, req.display);
  }
}

/**
 * The contended remainder of lock() for flock and ofd: `first` is the result
 * of the attempt lock() already made on the calling thread.
 */
async function lockWhole(req: LockRequest, record: string | undefined, first: number): Promise<LockHandle> {
  const started = performance.now();
  for (let result = first; ; result = attempt(req, record, req.timeout > 0)) {
    if (result >= 0) return makeHandle(req, result, out[Out.readOnly]!);
    if (result === -1) throw await timeoutError(req, started);
    const fd = -(result + 2);
    const readOnly = out[Out.readOnly]!;
    // Closing the descriptor releases whatever the kernel may have granted.
    await kernelWait(req, fd, started, () => native.close(fd));
    let same: boolean;
    try {
      // A fresh record: createdAt is when the lock was granted, not when
      // lock() was called (inspect's "held for" is computed from it).
      same = finish(req, fd, readOnly, recordFor(req));
    } catch (error) {
      native.close(fd);
      throw error;
    }
    if (same) return makeHandle(req, fd, readOnly);
    // The holder we waited for unlinked the file on release: our lock is on
    // an orphaned inode and guards nothing. Start over on the current file.
    native.close(fd);
  }
}

function unlockQuietly(fd: number, req: LockRequest): void {
  try {
    native.unlock(fd, req.flags, req.start, req.length);
  } catch {
    // Unlocking a range we hold cannot fail short of EBADF; the close that
    // follows (when this was the last user) drops it regardless.
  }
}

async function lockPosix(req: LockRequest): Promise<LockHandle> {
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

/**
 * Acquires the lock on `path`, waiting (in the kernel, without polling) until
 * it is free, the timeout expires (LockTimeoutError, code ELOCKED) or the
 * signal aborts (AbortError). The lock file is created if missing; its
 * directory must exist.
 */
export function lock(path: string | Buffer, options?: LockOptions): Promise<LockHandle> {
  // Not an async function: the uncontended path is one native call, and it
  // should cost no more than that plus one resolved promise. Every failure,
  // validation included, still arrives as a rejection.
  try {
    const req = normalizeOptions(path, options, Number.POSITIVE_INFINITY);
    if (req.signal?.aborted) throw abortError(req.signal, req.display);
    if (req.kind === 'posix') return lockPosix(req);
    const record = recordFor(req);
    const result = attempt(req, record, req.timeout > 0);
    if (result >= 0) return Promise.resolve(makeHandle(req, result, out[Out.readOnly]!));
    return lockWhole(req, record, result);
  } catch (error) {
    return Promise.reject(error);
  }
}

function rejectOptions(options: object | undefined, names: readonly string[], why: string): void {
  for (const name of names) {
    if (options !== undefined && options !== null && name in options) {
      throw new TypeError(`kernel-lock: option ${name} is not accepted here: ${why}`);
    }
  }
}

/**
 * One non-blocking attempt. Resolves to null only when another holder has the
 * lock; every other failure rejects.
 */
export function tryLock(path: string | Buffer, options?: TryLockOptions): Promise<LockHandle | null> {
  try {
    return Promise.resolve(tryLockSync(path, options));
  } catch (error) {
    return Promise.reject(error);
  }
}

/** Synchronous tryLock(). */
export function tryLockSync(path: string | Buffer, options?: TryLockOptions): LockHandle | null {
  rejectOptions(
    options,
    ['timeout', 'signal'],
    'tryLock makes exactly one attempt; use lock() with a timeout or signal',
  );
  const req = normalizeOptions(path, options, 0);
  if (req.kind === 'posix') return tryLockPosix(req);
  const result = attempt(req, recordFor(req), false);
  return result >= 0 ? makeHandle(req, result, out[Out.readOnly]!) : null;
}

function tryLockPosix(req: LockRequest): LockHandle | null {
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

function timeoutErrorSync(req: LockRequest, started: number): LockTimeoutError {
  const waited = performance.now() - started;
  const { detail, holder } = describeHolderSync(req);
  return new LockTimeoutError(req.display, waited, detail, holder);
}

/**
 * Acquires the lock, blocking the calling thread. A finite timeout is
 * honoured exactly (the wait runs on a helper thread that is interrupted at
 * the deadline); with Infinity the thread sleeps in the kernel itself.
 */
export function lockSync(path: string | Buffer, options?: LockSyncOptions): LockHandle {
  rejectOptions(options, ['signal'], 'a synchronous wait blocks the thread and cannot be aborted; use lock()');
  const req = normalizeOptions(path, options, Number.POSITIVE_INFINITY);
  if (req.kind === 'posix') return lockSyncPosix(req);
  const started = performance.now();
  const record = recordFor(req);
  for (;;) {
    const result = attempt(req, record, req.timeout > 0);
    if (result >= 0) return makeHandle(req, result, out[Out.readOnly]!);
    if (result === -1) throw timeoutErrorSync(req, started);
    const fd = -(result + 2);
    const readOnly = out[Out.readOnly]!;
    if (req.kind === 'flock' && heldHere(inodeKey(out[Out.dev]!, out[Out.ino]!)) > 0) {
      native.close(fd);
      throw selfDeadlockError(req.display);
    }
    let status: number;
    let same = false;
    try {
      const remaining = Math.max(0, req.timeout - (performance.now() - started));
      status = native.waitSync(fd, req.flags, req.start, req.length, remaining);
      if (status === 0) same = finish(req, fd, readOnly, recordFor(req));
    } catch (error) {
      native.close(fd);
      throw fromNative(error, req.display);
    }
    if (status === 0 && same) return makeHandle(req, fd, readOnly);
    native.close(fd);
    if (status !== 0) throw timeoutErrorSync(req, started);
  }
}

function lockSyncPosix(req: LockRequest): LockHandle {
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

/** Runs `fn` while holding the lock; releases when `fn` settles or throws. */
export async function withLock<T>(
  path: string | Buffer,
  fn: (handle: LockHandle) => T | Promise<T>,
  options?: LockOptions,
): Promise<T> {
  if (typeof fn !== 'function') throw new TypeError('kernel-lock: withLock(path, fn, options?) needs a function');
  const handle = await lock(path, options);
  try {
    return await fn(handle);
  } finally {
    handle.releaseSync();
  }
}
