// lock(), tryLock(), lockSync() and withLock().
//
// The uncontended path is one native call on the calling thread: open, a
// non-blocking lock, verification, owner record. Only when the lock is busy
// does a wait start, on a dedicated native thread that sleeps in the kernel
// (native/waiter.cc); the kernel wakes it when the holder releases or dies.
// A timeout or an AbortSignal interrupts that thread; a lock granted in the
// race with the cancellation is dropped at once.
import { abortError, fromNative, LockTimeoutError, selfDeadlockError, systemError } from './errors.js';
import { LockHandle } from './handle.js';
import { heldHere, inodeKey, noteAcquired } from './held-locks.js';
import { describeHolder } from './holder.js';
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

function recordFor(req: LockRequest): string | undefined {
  return req.mode === 'exclusive' ? formatRecord(req.kind, req.mode, req.owner) : undefined;
}

function syscallOf(req: LockRequest): string {
  return req.kind === 'flock' ? 'flock' : 'fcntl';
}

function makeHandle(req: LockRequest, fd: number, readOnly: boolean, posix?: InodeEntry): LockHandle {
  const key = inodeKey(out[Out.dev]!, out[Out.ino]!);
  noteAcquired(key);
  const init = { request: req, fd, key, readOnly, recordErrno: out[Out.recordErr]! };
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
  const { detail, holder } = await describeHolder(req);
  return new LockTimeoutError(req.display, performance.now() - started, detail, holder);
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
    const cancel = (why: 'timeout' | 'abort'): void => {
      cancelled ??= why;
      native.cancelWait(id);
    };
    const onAbort = (): void => cancel('abort');
    const armTimer = (): void => {
      const remaining = req.timeout - (performance.now() - started);
      if (remaining > MAX_TIMER_MS) timer = setTimeout(armTimer, MAX_TIMER_MS);
      else timer = setTimeout(() => cancel('timeout'), Math.max(0, remaining));
    };
    const onDone = (status: number): void => {
      if (timer !== undefined) clearTimeout(timer);
      req.signal?.removeEventListener('abort', onAbort);
      if (status === 0 && cancelled === null) {
        resolve();
        return;
      }
      abandon();
      if (cancelled === 'abort') reject(abortError(req.signal!, req.display));
      else if (cancelled === 'timeout') timeoutError(req, started).then(reject, reject);
      else reject(systemError(status, syscallOf(req), req.display));
    };
    try {
      id = native.wait(fd, req.flags, req.start, req.length, onDone);
    } catch (error) {
      abandon();
      reject(fromNative(error, req.display));
      return;
    }
    if (Number.isFinite(req.timeout)) armTimer();
    req.signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Finishes a granted wait: false when the file was replaced and the caller must start over. */
function finish(req: LockRequest, fd: number, readOnly: boolean, record: string | undefined): boolean {
  try {
    return native.finish(fd, req.path, req.flags | (readOnly ? Flag.readOnly : 0), req.start, req.length, record);
  } catch (error) {
    throw fromNative(error, req.display);
  }
}

async function lockWhole(req: LockRequest): Promise<LockHandle> {
  const started = performance.now();
  const record = recordFor(req);
  for (;;) {
    const result = attempt(req, record, req.timeout > 0);
    if (result >= 0) return makeHandle(req, result, out[Out.readOnly] === 1);
    if (result === -1) throw await timeoutError(req, started);
    const fd = -(result + 2);
    const readOnly = out[Out.readOnly] === 1;
    // Closing the descriptor releases whatever the kernel may have granted.
    await kernelWait(req, fd, started, () => native.close(fd));
    let same: boolean;
    try {
      same = finish(req, fd, readOnly, record);
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

async function lockPosix(req: LockRequest): Promise<LockHandle> {
  const started = performance.now();
  const deadline = started + req.timeout;
  const record = recordFor(req);
  for (;;) {
    let entry: InodeEntry;
    try {
      entry = joinEntry(req.path);
    } catch (error) {
      throw fromNative(error, req.display);
    }
    const readOnly = out[Out.readOnly] === 1;
    let ourTurn = false;
    let handed = false;
    try {
      ourTurn = await takeTurn(entry, req.signal, deadline);
      if (!ourTurn) {
        if (req.signal?.aborted) throw abortError(req.signal, req.display);
        throw await timeoutError(req, started);
      }
      let granted: boolean;
      try {
        granted = native.tryLock(entry.fd, req.flags, req.start, req.length);
      } catch (error) {
        throw fromNative(error, req.display);
      }
      if (!granted) {
        if (req.timeout === 0) throw await timeoutError(req, started);
        await kernelWait(req, entry.fd, started, () => native.unlock(entry.fd, req.flags, req.start, req.length));
      }
      if (finish(req, entry.fd, readOnly, record)) {
        handed = true;
        return makeHandle(req, entry.fd, readOnly, entry);
      }
      native.unlock(entry.fd, req.flags, req.start, req.length);
    } finally {
      if (!handed) {
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
export async function lock(path: string | Buffer, options?: LockOptions): Promise<LockHandle> {
  const req = normalizeOptions(path, options, Number.POSITIVE_INFINITY);
  if (req.signal?.aborted) throw abortError(req.signal, req.display);
  return req.kind === 'posix' ? lockPosix(req) : lockWhole(req);
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
export async function tryLock(path: string | Buffer, options?: TryLockOptions): Promise<LockHandle | null> {
  return tryLockSync(path, options);
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
  return result >= 0 ? makeHandle(req, result, out[Out.readOnly] === 1) : null;
}

function tryLockPosix(req: LockRequest): LockHandle | null {
  let entry: InodeEntry;
  try {
    entry = joinEntry(req.path);
  } catch (error) {
    throw fromNative(error, req.display);
  }
  const readOnly = out[Out.readOnly] === 1;
  let ourTurn = false;
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
    if (finish(req, entry.fd, readOnly, recordFor(req))) {
      handed = true;
      return makeHandle(req, entry.fd, readOnly, entry);
    }
    // Replaced between open and lock: whoever replaced it was not us.
    native.unlock(entry.fd, req.flags, req.start, req.length);
    return null;
  } finally {
    if (!handed) {
      leaveEntry(entry, true);
      if (ourTurn) passTurn(entry);
    }
  }
}

function timeoutErrorSync(req: LockRequest, started: number): LockTimeoutError {
  const waited = performance.now() - started;
  // The async description reads the record; a sync caller gets the same
  // text through a synchronous read.
  return new LockTimeoutError(req.display, waited, 'held by another process', null);
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
    if (result >= 0) return makeHandle(req, result, out[Out.readOnly] === 1);
    if (result === -1) throw timeoutErrorSync(req, started);
    const fd = -(result + 2);
    const readOnly = out[Out.readOnly] === 1;
    if (req.kind === 'flock' && heldHere(inodeKey(out[Out.dev]!, out[Out.ino]!)) > 0) {
      native.close(fd);
      throw selfDeadlockError(req.display);
    }
    let status: number;
    let same = false;
    try {
      const remaining = Math.max(0, req.timeout - (performance.now() - started));
      status = native.waitSync(fd, req.flags, req.start, req.length, remaining);
      if (status === 0) same = finish(req, fd, readOnly, record);
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
  const record = recordFor(req);
  for (;;) {
    let entry: InodeEntry;
    try {
      entry = joinEntry(req.path);
    } catch (error) {
      throw fromNative(error, req.display);
    }
    const readOnly = out[Out.readOnly] === 1;
    let ourTurn = false;
    let handed = false;
    try {
      ourTurn = takeTurnNow(entry);
      if (!ourTurn) {
        if (req.timeout === 0) throw timeoutErrorSync(req, started);
        throw selfDeadlockError(req.display);
      }
      let granted = native.tryLock(entry.fd, req.flags, req.start, req.length);
      if (!granted) {
        if (req.timeout === 0) throw timeoutErrorSync(req, started);
        const remaining = Math.max(0, req.timeout - (performance.now() - started));
        granted = native.waitSync(entry.fd, req.flags, req.start, req.length, remaining) === 0;
        if (!granted) throw timeoutErrorSync(req, started);
      }
      if (finish(req, entry.fd, readOnly, record)) {
        handed = true;
        return makeHandle(req, entry.fd, readOnly, entry);
      }
      native.unlock(entry.fd, req.flags, req.start, req.length);
    } catch (error) {
      throw fromNative(error, req.display);
    } finally {
      if (!handed) {
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
