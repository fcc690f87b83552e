// lock(), tryLock(), lockSync() and withLock().
//
// The uncontended path is one native call on the calling thread: open, a
// non-blocking lock, verification, owner record. Only when the lock is busy
// does a wait start, on a dedicated native thread that sleeps in the kernel
// (native/waiter.cc); the kernel wakes it when the holder releases or dies.
// A timeout or an AbortSignal interrupts that thread; a lock granted in the
// race with the cancellation is dropped at once.

import { native, Out, out } from '../native/binding.js';
import { lockPosix, lockSyncPosix, tryLockPosix } from './acquire-posix.js';
import {
  attempt,
  finish,
  grant,
  grantWait,
  heldLockOf,
  makeHandle,
  prepareHandle,
  recordFor,
  selfDeadlock,
  timeoutError,
  timeoutErrorSync,
} from './acquire-steps.js';
import { abortError, fromNative } from './errors.js';
import type { LockHandle } from './handle.js';
import { conflictsHere, inodeKey } from './held-locks.js';
import { type LockOptions, type LockRequest, normalizeOptions } from './options.js';
/** Options of tryLock(): one attempt, so no timeout and nothing to abort. */
export type TryLockOptions = Omit<LockOptions, 'timeout' | 'signal'>;
/** Options of lockSync(): it blocks the thread, so it cannot be aborted. */
export type LockSyncOptions = Omit<LockOptions, 'signal'>;

/**
 * The contended remainder of lock() for flock and ofd: `first` is the result
 * of the attempt lock() already made on the calling thread. The promise is
 * settled straight from the wait's completion (no async frames in between).
 */
function lockWhole(req: LockRequest, first: number): Promise<LockHandle> {
  const started = performance.now();
  return new Promise<LockHandle>((resolve, reject) => {
    const step = (result: number): void => {
      if (result >= 0) resolve(makeHandle(req, result, out[Out.readOnly]!));
      else if (result === -1) timeoutError(req, started).then(reject, reject);
      else grantWait(req, -(result + 2), out[Out.readOnly]!, started, resolve, reject, retry);
    };
    // A fresh record: createdAt is when the lock was granted.
    const retry = (): void => step(attempt(req, recordFor(req), req.timeout > 0));
    try {
      step(first);
    } catch (error) {
      reject(error);
    }
  });
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
    return lockRequest(normalizeOptions(path, options, Number.POSITIVE_INFINITY));
  } catch (error) {
    return Promise.reject(error);
  }
}

/** lock() for a request validated already (the CLI adds internal flags to it). */
export function lockRequest(req: LockRequest): Promise<LockHandle> {
  try {
    if (req.signal?.aborted) throw abortError(req.signal, req.display);
    if (req.kind === 'posix') return lockPosix(req);
    // One clock reading for an uncontended acquisition: the record's
    // createdAt and the handle's acquiredAt (two cost ~1 % of the cycle).
    const now = Date.now();
    const result = attempt(req, recordFor(req, now), req.timeout > 0);
    if (result >= 0) return Promise.resolve(makeHandle(req, result, out[Out.readOnly]!, false, now));
    return lockWhole(req, result);
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
  const now = Date.now();
  const result = attempt(req, recordFor(req, now), false);
  return result >= 0 ? makeHandle(req, result, out[Out.readOnly]!, false, now) : null;
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
  // As in lock(): the first attempt's record and handle share one clock reading.
  let now: number | undefined = Date.now();
  const record = recordFor(req, now);
  for (;;) {
    const result = attempt(req, record, req.timeout > 0);
    if (result >= 0) return makeHandle(req, result, out[Out.readOnly]!, false, now);
    now = undefined;
    if (result === -1) throw timeoutErrorSync(req, started);
    const fd = -(result + 2);
    const readOnly = out[Out.readOnly]!;
    const key = inodeKey(out[Out.dev]!, out[Out.ino]!);
    // The handle is prepared and the record formatted before the wait (its
    // createdAt is stamped natively at the grant): after the wake-up, on
    // caches gone cold while the thread slept, only the grant is left.
    const held = heldLockOf(req);
    const handle = prepareHandle(req, false, held);
    if (conflictsHere(key, held)) {
      // This thread holds a conflicting lock: blocking it would wait forever.
      native.close(fd);
      throw selfDeadlock(req);
    }
    let status: number;
    let same = false;
    try {
      const remaining = Math.max(0, req.timeout - (performance.now() - started));
      status = native.waitSync(fd, req.flags, req.start, req.length, remaining, req.path);
      if (status === 0) same = finish(req, fd, readOnly, record);
    } catch (error) {
      native.close(fd);
      throw fromNative(error, req.display);
    }
    // Verified on this very descriptor: the inode is the one found busy.
    if (status === 0 && same) return grant(handle, fd, readOnly, key);
    native.close(fd);
    if (status !== 0) throw timeoutErrorSync(req, started);
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
