// One kernel wait for a lease: a dedicated native thread sleeps in
// F_OFD_SETLKW / flock until the lock is granted (the holder released it or
// died). Three things can end it early: the acquisition's timeout, its
// AbortSignal, and the takeover deadline of the holder being waited for.
// Each is a timer or an event, never a poll; a lock granted in the race with
// a cancellation is dropped at once by `abandon`.
import { onAbort } from '../lock/abort-listeners.js';
import { fromNative, systemError } from '../lock/errors.js';
import { Flag, native } from '../native/binding.js';
import type { LockSpec } from './file.js';

/** How a wait ended. */
export type WaitEnd = 'granted' | 'timeout' | 'abort' | 'takeover';

/** When to stop waiting: deadlines on the performance.now() clock (Infinity: none). */
export interface WaitLimits {
  deadline: number;
  takeoverAt: number;
  signal: AbortSignal | undefined;
}

/** setTimeout's longest delay; longer waits re-arm. */
const MAX_TIMER_MS = 0x7fffffff;
/** EINTR: reported if the native layer says "cancelled" although nobody cancelled. */
const CANCELLED_ERRNO = 4;

/**
 * Waits in the kernel for `spec` on `fd`. Resolves 'granted' holding the
 * lock, or the reason it stopped (then not holding it: `abandon` dropped a
 * lock granted in the race). Rejects only on a system error.
 */
export function waitFor(
  fd: number,
  spec: LockSpec,
  limits: WaitLimits,
  display: string,
  abandon: () => void,
): Promise<WaitEnd> {
  if (limits.signal?.aborted) return Promise.resolve('abort');
  return new Promise<WaitEnd>((resolve, reject) => {
    let cancelled: Exclude<WaitEnd, 'granted'> | null = null;
    let timer: NodeJS.Timeout | undefined;
    let id = 0;
    let unsubscribe: (() => void) | undefined;
    const cancel = (why: Exclude<WaitEnd, 'granted'>): void => {
      cancelled ??= why;
      native.cancelWait(id);
    };
    // setTimeout measures from libuv's cached loop time and can fire a little
    // early: re-check against the clock and re-arm, so neither the timeout
    // nor a takeover ever happens before its moment.
    const armTimer = (): void => {
      const now = performance.now();
      if (limits.deadline <= now) cancel('timeout');
      else if (limits.takeoverAt <= now) cancel('takeover');
      else {
        const next = Math.min(limits.deadline, limits.takeoverAt) - now;
        if (Number.isFinite(next)) timer = setTimeout(armTimer, Math.min(Math.ceil(next), MAX_TIMER_MS));
      }
    };
    const onDone = (status: number): void => {
      if (timer !== undefined) clearTimeout(timer);
      unsubscribe?.();
      if (status === 0 && cancelled === null) {
        resolve('granted');
        return;
      }
      if (status === 0) abandon();
      if (cancelled !== null) resolve(cancelled);
      else
        reject(
          systemError(
            status > 0 ? status : CANCELLED_ERRNO,
            (spec.flags & Flag.ofd) === 0 ? 'flock' : 'fcntl',
            display,
          ),
        );
    };
    try {
      id = native.wait(fd, spec.flags, spec.start, spec.length, onDone);
    } catch (error) {
      reject(fromNative(error, display));
      return;
    }
    armTimer();
    if (limits.signal) unsubscribe = onAbort(limits.signal, () => cancel('abort'));
  });
}
