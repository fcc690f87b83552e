// Acquisition for kind 'posix'. Classic fcntl locks belong to the process,
// so acquisitions take turns per inode in the process-wide posix table
// (native/posix_table.h, shared by every worker_thread) before asking the
// kernel, and every failure path unlocks explicitly instead of closing: the
// inode's one descriptor stays open for the process's other acquirers.
// The uncontended path is one native call, as for the other kinds.
import os from 'node:os';
import { Flag, native, Out, out } from '../native/binding.js';
import { kernelWait, makeHandle, recordFor, selfDeadlock, timeoutError, timeoutErrorSync } from './acquire-steps.js';
import { abortError, fromNative } from './errors.js';
import type { LockHandle } from './handle.js';
import type { LockRequest } from './options.js';
import { waitTurn } from './posix-table.js';

const EDEADLK = os.constants.errno.EDEADLK;

/** posixAbandon() state bits. */
const HAVE_TURN = 1;
const LOCKED = 2;

/** One native attempt; returns the native result code (see NativeBinding.posixAcquire). */
function attemptPosix(req: LockRequest, record: Buffer | undefined, keepOnBusy: boolean): number {
  try {
    return native.posixAcquire(req.path, req.flags | (keepOnBusy ? Flag.keepOnBusy : 0), req.start, req.length, record);
  } catch (error) {
    throw fromNative(error, req.display);
  }
}

/**
 * Verifies a granted lock and writes the record; false when the file was
 * replaced. The record was formatted before the wait: its createdAt is set
 * natively to the grant time.
 */
function finishPosix(req: LockRequest, fd: number, readOnly: number, record: Buffer | undefined): boolean {
  try {
    return native.posixFinish(
      fd,
      req.path,
      req.flags | Flag.stampRecord | (readOnly !== 0 ? Flag.readOnly : 0),
      req.start,
      req.length,
      record,
    );
  } catch (error) {
    throw fromNative(error, req.display);
  }
}

function tryLockTurn(req: LockRequest, fd: number): boolean {
  try {
    return native.posixTryLock(fd, req.flags, req.start, req.length);
  } catch (error) {
    throw fromNative(error, req.display);
  }
}

export async function lockPosix(req: LockRequest): Promise<LockHandle> {
  const started = performance.now();
  const deadline = started + req.timeout;
  for (;;) {
    const record = recordFor(req);
    const result = attemptPosix(req, record, true);
    if (result >= 0) return makeHandle(req, result, out[Out.readOnly]!, true);
    const fd = -(result + 2);
    const readOnly = out[Out.readOnly]!;
    let state = out[Out.turn] === 1 ? HAVE_TURN : 0;
    let handed = false;
    try {
      if (!(state & HAVE_TURN)) {
        if (req.timeout === 0) throw await timeoutError(req, started);
        const turn = await waitTurn(fd, req.signal, deadline);
        if (turn.haveTurn) state |= HAVE_TURN;
        if (turn.outcome === 'aborted') throw abortError(req.signal!, req.display);
        if (turn.outcome === 'timeout') throw await timeoutError(req, started);
        if (tryLockTurn(req, fd)) state |= LOCKED;
      }
      if (!(state & LOCKED)) {
        if (req.timeout === 0) throw await timeoutError(req, started);
        // A cancelled wait may still have been granted in the race with the
        // cancellation: the abandon below unlocks in any case.
        await kernelWait(req, fd, started, () => {
          state |= LOCKED;
        });
        state |= LOCKED;
      }
      if (finishPosix(req, fd, readOnly, record)) {
        handed = true;
        return makeHandle(req, fd, readOnly, true);
      }
      // The holder we waited for unlinked the file on release: our lock is
      // on an orphaned inode. Drop it and start over on the current file.
    } finally {
      if (!handed) native.posixAbandon(fd, req.flags, req.start, req.length, state);
    }
  }
}

export function tryLockPosix(req: LockRequest): LockHandle | null {
  const result = attemptPosix(req, recordFor(req), false);
  return result >= 0 ? makeHandle(req, result, out[Out.readOnly]!, true) : null;
}

export function lockSyncPosix(req: LockRequest): LockHandle {
  const started = performance.now();
  const remaining = (): number => Math.max(0, req.timeout - (performance.now() - started));
  for (;;) {
    const record = recordFor(req);
    const result = attemptPosix(req, record, true);
    if (result >= 0) return makeHandle(req, result, out[Out.readOnly]!, true);
    const fd = -(result + 2);
    const readOnly = out[Out.readOnly]!;
    let state = out[Out.turn] === 1 ? HAVE_TURN : 0;
    let handed = false;
    try {
      if (!(state & HAVE_TURN)) {
        if (req.timeout === 0) throw timeoutErrorSync(req, started);
        // Another thread's turn is waited for; this thread's own throws
        // EDEADLK (it could never be passed on while we block).
        let turn: number;
        try {
          turn = native.posixWaitTurnSync(fd, remaining());
        } catch (error) {
          if ((error as { errno?: number }).errno === -EDEADLK) throw selfDeadlock(req);
          throw fromNative(error, req.display);
        }
        if (turn !== 0) throw timeoutErrorSync(req, started);
        state |= HAVE_TURN;
        if (tryLockTurn(req, fd)) state |= LOCKED;
      }
      if (!(state & LOCKED)) {
        if (req.timeout === 0) throw timeoutErrorSync(req, started);
        // A cancelled wait may still have been granted in the race with the
        // deadline: unlock in any case before reporting the timeout.
        state |= LOCKED;
        let status: number;
        try {
          status = native.waitSync(fd, req.flags, req.start, req.length, remaining());
        } catch (error) {
          throw fromNative(error, req.display);
        }
        if (status !== 0) throw timeoutErrorSync(req, started);
      }
      if (finishPosix(req, fd, readOnly, record)) {
        handed = true;
        return makeHandle(req, fd, readOnly, true);
      }
    } finally {
      if (!handed) native.posixAbandon(fd, req.flags, req.start, req.length, state);
    }
  }
}
