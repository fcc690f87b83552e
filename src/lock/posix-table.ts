// The JavaScript face of the process-wide posix table (native/posix_table.h).
// Classic POSIX record locks belong to the process, and closing ANY
// descriptor of a file drops ALL of the process's locks on it, so the table
// (shared by every worker_thread) keeps one descriptor per inode, makes the
// process's acquisitions of an inode take turns, and defers closing other
// descriptors of an inode while a turn is taken. This module waits for a
// turn without blocking the event loop, and routes every descriptor close
// kernel-lock makes outside the addon through the table.

import { native } from '../native/binding.js';
import { onAbort } from './abort-listeners.js';
import type { InodeKey } from './held-locks.js';

/**
 * How a wait for the turn ended. `haveTurn` is true when the turn is ours
 * (also when it came in the race with a timeout or abort): the caller must
 * then pass it on unless it goes on to lock.
 */
export interface TurnOutcome {
  outcome: 'ours' | 'timeout' | 'aborted';
  haveTurn: boolean;
}

/**
 * Waits for this acquisition's turn on the joined entry `fd`, queued behind
 * the process's other acquirers of the inode (in any worker). Never rejects.
 */
export function waitTurn(fd: number, signal: AbortSignal | undefined, deadline: number): Promise<TurnOutcome> {
  if (signal?.aborted) return Promise.resolve({ outcome: 'aborted', haveTurn: false });
  if (deadline <= performance.now()) return Promise.resolve({ outcome: 'timeout', haveTurn: false });
  return new Promise<TurnOutcome>((resolve) => {
    let gaveUp: 'timeout' | 'aborted' | null = null;
    let timer: NodeJS.Timeout | undefined;
    let unsubscribe: (() => void) | undefined;
    const giveUp = (why: 'timeout' | 'aborted'): void => {
      gaveUp ??= why;
      native.posixCancelTurn(id);
    };
    // Re-checked against the clock: a timer may fire early (libuv's cached
    // loop time), and the turn must not be given up before the deadline.
    const armTimer = (): void => {
      const remaining = deadline - performance.now();
      if (remaining <= 0) giveUp('timeout');
      else timer = setTimeout(armTimer, Math.min(Math.ceil(remaining), 0x7fffffff));
    };
    const id = native.posixWaitTurn(fd, (status) => {
      if (timer !== undefined) clearTimeout(timer);
      unsubscribe?.();
      resolve({ outcome: gaveUp ?? (status === 0 ? 'ours' : 'timeout'), haveTurn: status === 0 });
    });
    if (Number.isFinite(deadline)) armTimer();
    if (signal) unsubscribe = onAbort(signal, () => giveUp('aborted'));
  });
}

/** The descriptor this process uses for posix locks on an inode, if it has one. */
export function posixDescriptor(key: InodeKey): number | undefined {
  const [dev, ino] = key.split(':').map(Number);
  const fd = native.posixDescriptor(dev!, ino!);
  return fd < 0 ? undefined : fd;
}

/**
 * Closes a descriptor opened outside the addon (to read an owner record,
 * say). Closing it directly would drop every posix lock this process holds
 * on its inode; through the table, the close waits for the end of the turn.
 */
export function closeDescriptor(fd: number): void {
  native.closeDescriptor(fd);
}
