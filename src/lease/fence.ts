// Taking the fence: the short exclusive OFD lock under which every token
// change and every fenced write happens. Uncontended it is one fcntl on the
// calling thread; contended, write() sleeps in the kernel on a native thread
// and writeSync() blocks its thread in the kernel, after making sure that
// this very thread is not the one holding the fence (which would never wake).
import os from 'node:os';
import { abortError, LockTimeoutError, systemError } from '../lock/errors.js';
import type { InodeKey } from '../lock/held-locks.js';
import { native } from '../native/binding.js';
import { drop, FENCE, tryTake } from './file.js';
import { waitFor } from './wait.js';

/** Fences this thread holds across an await (asynchronous fenced writes in progress), by inode. */
const heldAcrossAwait = new Map<InodeKey, number>();

/** Records that this thread holds (+1) or dropped (-1) a fence on `key` across an await. */
export function noteFence(key: InodeKey, delta: 1 | -1): void {
  const count = (heldAcrossAwait.get(key) ?? 0) + delta;
  if (count <= 0) heldAcrossAwait.delete(key);
  else heldAcrossAwait.set(key, count);
}

const BUSY_DETAIL = "(the fence is held by another holder's fenced write or by a token change)";

/**
 * Takes the fence for write(): undefined when taken at once (no promise on
 * the uncontended path), else a promise that resolves once held or rejects
 * with LockTimeoutError or AbortError.
 */
export function takeFence(
  fd: number,
  display: string,
  timeout: number,
  signal: AbortSignal | undefined,
): Promise<void> | undefined {
  if (signal?.aborted) throw abortError(signal, display);
  if (tryTake(fd, FENCE, display)) return undefined;
  return waitForFence(fd, display, timeout, signal);
}

async function waitForFence(
  fd: number,
  display: string,
  timeout: number,
  signal: AbortSignal | undefined,
): Promise<void> {
  const started = performance.now();
  if (timeout === 0) throw new LockTimeoutError(display, 0, BUSY_DETAIL);
  const end = await waitFor(fd, FENCE, { deadline: started + timeout, takeoverAt: Infinity, signal }, display, () =>
    drop(fd, FENCE),
  );
  if (end === 'granted') return;
  if (end === 'abort') throw abortError(signal!, display);
  throw new LockTimeoutError(display, performance.now() - started, BUSY_DETAIL);
}

/** Takes the fence for writeSync(), blocking the thread in the kernel while another holder has it. */
export function takeFenceSync(fd: number, key: InodeKey, display: string, timeout: number): void {
  if (tryTake(fd, FENCE, display)) return;
  if ((heldAcrossAwait.get(key) ?? 0) > 0) {
    const error = systemError(os.constants.errno.EDEADLK, 'fcntl', display);
    error.message =
      `EDEADLK: resource deadlock avoided, writeSync '${display}' (this thread is inside an asynchronous fenced ` +
      'write on the same lock file, which holds the fence; a synchronous wait would block the only thread that can ' +
      'finish it. Use write(), or finish the other write first)';
    throw error;
  }
  const started = performance.now();
  if (timeout === 0) throw new LockTimeoutError(display, 0, BUSY_DETAIL);
  if (native.waitSync(fd, FENCE.flags, FENCE.start, FENCE.length, timeout) !== 0) {
    throw new LockTimeoutError(display, performance.now() - started, BUSY_DETAIL);
  }
}
