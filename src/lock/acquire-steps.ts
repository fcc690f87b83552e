// The steps every acquisition is made of: one native attempt, a kernel wait
// on a dedicated thread that a timeout or an AbortSignal can interrupt, the
// post-wait verification and owner record, the handle, and the errors.
// acquire.ts (whole-file kinds) and acquire-posix.ts compose them.

import { Flag, native, Out, out } from '../native/binding.js';
import { onAbort } from './abort-listeners.js';
import {
  abortError,
  fromNative,
  LockTimeoutError,
  type SystemError,
  selfDeadlockError,
  systemError,
} from './errors.js';
import { grantHandle, LockHandle } from './handle.js';
import { type HeldLock, type InodeKey, inodeKey } from './held-locks.js';
import { describeHolder, describeHolderSync } from './holder.js';
import type { LockRequest } from './options.js';
import { formatRecord } from './owner-record.js';

/** setTimeout's longest delay; longer timeouts re-arm. */
const MAX_TIMER_MS = 0x7fffffff;
/** EINTR: reported if the native layer says "cancelled" although nobody cancelled. */
const CANCELLED_ERRNO = 4;

let lastRecord = '';
let lastRecordBytes: Buffer = Buffer.alloc(0);
/** The addon's token for lastRecordBytes (native.setRecord). */
let lastRecordToken = 0;

/**
 * The owner record for an exclusive acquisition, as bytes: converted once
 * per change of the record (formatRecord() keeps one per millisecond), not
 * by the native layer on every acquisition. `now` is its createdAt. The
 * addon keeps a copy of the latest (setRecord): an attempt with these very
 * bytes passes its token instead (Flag.storedRecord), which spares a Buffer
 * lookup through N-API per acquisition (~0.5 % of the uncontended cycle).
 */
export function recordFor(req: LockRequest, now: number = Date.now()): Buffer | undefined {
  if (req.mode !== 'exclusive') return undefined;
  const record = formatRecord(req.kind, req.mode, req.owner, now);
  if (record !== lastRecord) {
    const bytes = Buffer.from(record);
    lastRecordToken = native.setRecord(bytes);
    lastRecord = record;
    lastRecordBytes = bytes;
  }
  return lastRecordBytes;
}

export function syscallOf(req: LockRequest): string {
  return req.kind === 'flock' ? 'flock' : 'fcntl';
}

/** EDEADLK for a synchronous wait on a lock this very thread holds (or is acquiring). */
export function selfDeadlock(req: LockRequest): SystemError {
  const error = selfDeadlockError(req.display);
  error.syscall = syscallOf(req);
  return error;
}

/** The lock `req` asks for, as the held-locks table records it. */
export function heldLockOf(req: LockRequest): HeldLock {
  return { kind: req.kind, mode: req.mode, start: req.start, length: req.length };
}

/** A handle for `req`, prepared before it is granted (see grantHandle()); `held` is its own entry. */
export function prepareHandle(req: LockRequest, posix = false, held = heldLockOf(req)): LockHandle {
  return new LockHandle({ request: req, held, posix });
}

/**
 * Completes `handle` with the grant the last native call reported (the out
 * slots). `readOnly` is 0 for a writable descriptor, -1 for one read-only by
 * choice (foreign content), else the errno (EACCES, EROFS) that made the
 * library fall back to a read-only one: that errno, not the write that was
 * never attempted, is why the owner record is missing. `key` is the inode's
 * key when the caller has it already; `at` the grant time (default: now).
 */
export function grant(handle: LockHandle, fd: number, readOnly: number, key?: InodeKey, at?: number): LockHandle {
  const foreign = out[Out.recordSkipped] === 1;
  const recordErrno = foreign ? 0 : readOnly > 0 && handle.mode === 'exclusive' ? readOnly : out[Out.recordErr]!;
  return grantHandle(handle, {
    fd,
    key: key ?? inodeKey(out[Out.dev]!, out[Out.ino]!),
    readOnly: readOnly !== 0,
    recordErrno,
    foreign,
    at: at ?? Date.now(),
  });
}

/**
 * A handle for a lock the last native call granted; `posix`: the descriptor
 * is the posix table's entry. `at`: the grant time, when the caller read the
 * clock already (default: now).
 */
export function makeHandle(req: LockRequest, fd: number, readOnly: number, posix = false, at?: number): LockHandle {
  return grant(prepareHandle(req, posix), fd, readOnly, undefined, at);
}

/** One native acquisition attempt; returns the native result code. */
export function attempt(req: LockRequest, record: Buffer | undefined, keepOnBusy: boolean): number {
  const flags = req.flags | (keepOnBusy ? Flag.keepOnBusy : 0);
  try {
    if (record === lastRecordBytes) {
      // The addon holds these bytes already (recordFor()), unless another
      // copy of this module in the thread has replaced them since.
      const result = native.acquire(req.path, flags | Flag.storedRecord, req.start, req.length, lastRecordToken);
      if (result !== undefined) return result;
    }
    return native.acquire(req.path, flags, req.start, req.length, record);
  } catch (error) {
    throw fromNative(error, req.display);
  }
}

export async function timeoutError(req: LockRequest, started: number): Promise<LockTimeoutError> {
  const waited = performance.now() - started; // before the inspection, which takes time of its own
  const { detail, holder } = await describeHolder(req);
  return new LockTimeoutError(req.display, waited, detail, holder);
}

/**
 * What may interrupt a native wait: its deadline and its AbortSignal. Either
 * one cancels the waiter thread; the completion then reports why.
 */
class WaitCancellation {
  private why: 'timeout' | 'abort' | null = null;
  private id = 0;
  private timer: NodeJS.Timeout | undefined;
  private unsubscribe: (() => void) | undefined;

  constructor(
    private readonly req: LockRequest,
    private readonly started: number,
  ) {}

  /** Arms the deadline and the signal for the native wait `id`, which has started. */
  arm(id: number): void {
    this.id = id;
    if (Number.isFinite(this.req.timeout)) this.armTimer();
    if (this.req.signal) this.unsubscribe = onAbort(this.req.signal, () => this.cancel('abort'));
  }

  /** Disarms both at the wait's completion; says what cancelled it, if anything did. */
  settle(): 'timeout' | 'abort' | null {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.unsubscribe?.();
    return this.why;
  }

  private cancel(why: 'timeout' | 'abort'): void {
    this.why ??= why;
    native.cancelWait(this.id);
  }

  // setTimeout measures from libuv's cached loop time, which lags behind
  // when the loop is busy, so a timer can fire a little early: re-check
  // against the clock and re-arm, so a wait never gives up before its
  // deadline. Also re-arms past setTimeout's longest delay.
  private armTimer(): void {
    const remaining = this.req.timeout - (performance.now() - this.started);
    if (remaining <= 0) this.cancel('timeout');
    else this.timer = setTimeout(() => this.armTimer(), Math.min(Math.ceil(remaining), MAX_TIMER_MS));
  }
}

/**
 * Waits in the kernel for the lock on `fd`. Resolves when granted. Rejects
 * with LockTimeoutError, AbortError or a system error; before rejecting it
 * calls `abandon()`, which must drop any lock the kernel granted in the race
 * with the cancellation.
 */
export function kernelWait(req: LockRequest, fd: number, started: number, abandon: () => void): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const cancellation = new WaitCancellation(req, started);
    const onDone = (status: number): void => {
      const cancelled = cancellation.settle();
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
      cancellation.arm(native.wait(fd, req.flags, req.start, req.length, onDone));
    } catch (error) {
      abandon();
      reject(fromNative(error, req.display));
    }
  });
}

/** Native wait status: the waiter thread asks JavaScript to start the acquisition over. */
const RESTART = -2;

/**
 * The contended part of a whole acquisition (flock, ofd): waits on `fd` on a
 * dedicated thread, which verifies the grant and writes the owner record
 * before JavaScript hears of it (native/grant.h), and settles the
 * acquisition straight from that completion: `resolve` gets the handle.
 * `retry` runs when the native side asks for a fresh attempt on this
 * thread (the path could not be reopened there: the attempt reports why).
 */
export function grantWait(
  req: LockRequest,
  fd: number,
  readOnly: number,
  started: number,
  resolve: (handle: LockHandle) => void,
  reject: (error: unknown) => void,
  retry: () => void,
): void {
  if (req.signal?.aborted) {
    native.close(fd);
    reject(abortError(req.signal, req.display));
    return;
  }
  // Nothing can cancel a wait without a deadline or a signal (the default):
  // the completion then skips even the call that would find nothing to disarm.
  const cancellation =
    Number.isFinite(req.timeout) || req.signal !== undefined ? new WaitCancellation(req, started) : null;
  // Everything the grant does not decide is done now, before the wait: after
  // the wake-up, on caches gone cold while the thread slept, only the
  // descriptor, the grant time and the record's outcome are left to fill in.
  // The inode is most often the one the attempt found busy (out slots).
  const handle = prepareHandle(req);
  const dev = out[Out.dev]!;
  const ino = out[Out.ino]!;
  const key = inodeKey(dev, ino);
  const onDone = (status: number, at: number): void => {
    const cancelled = cancellation === null ? null : cancellation.settle();
    try {
      if (status === 0 && cancelled === null) {
        const same = out[Out.dev] === dev && out[Out.ino] === ino;
        resolve(grant(handle, at, out[Out.readOnly]!, same ? key : undefined));
        return;
      }
      // Granted in the race with the cancellation, cancelled, failed, or to
      // be started over: the descriptor (and any lock on it) goes first.
      native.close(at);
      if (cancelled === 'abort') reject(abortError(req.signal!, req.display));
      else if (cancelled === 'timeout') timeoutError(req, started).then(reject, reject);
      else if (status === RESTART) retry();
      else reject(systemError(status > 0 ? status : CANCELLED_ERRNO, syscallOf(req), req.display));
    } catch (error) {
      reject(error);
    }
  };
  try {
    const id = native.wait(fd, req.flags, req.start, req.length, onDone, req.path, recordFor(req), readOnly);
    cancellation?.arm(id);
  } catch (error) {
    native.close(fd);
    reject(fromNative(error, req.display));
  }
}

/**
 * Finishes a granted wait: false when the file was replaced and the caller
 * must start over. The record may be formatted before the wait: its
 * createdAt is set natively to the grant time.
 */
export function finish(req: LockRequest, fd: number, readOnly: number, record: Buffer | undefined): boolean {
  const flags = req.flags | Flag.stampRecord | (readOnly !== 0 ? Flag.readOnly : 0);
  try {
    return native.finish(fd, req.path, flags, req.start, req.length, record);
  } catch (error) {
    throw fromNative(error, req.display);
  }
}

export function unlockQuietly(fd: number, req: LockRequest): void {
  try {
    native.unlock(fd, req.flags, req.start, req.length);
  } catch {
    // Unlocking a range we hold cannot fail short of EBADF; the close that
    // follows (when this was the last user) drops it regardless.
  }
}

export function timeoutErrorSync(req: LockRequest, started: number): LockTimeoutError {
  const waited = performance.now() - started;
  const { detail, holder } = describeHolderSync(req);
  return new LockTimeoutError(req.display, waited, detail, holder);
}
