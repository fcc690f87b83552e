// A held fenced lease. Its descriptor carries the kernel locks (membership
// and the liveness byte of its token); closing it ends the lease, and the
// kernel closes it when the process dies. Being *current* is a different
// matter: the lease stays held until released, but it stops being current
// the moment a successor takes it over (a larger token in the slot). Fenced
// writes check that under the fence, so a superseded holder's write can never
// land after its successor's first one.
import { AsyncLocalStorage } from 'node:async_hooks';
import type { FSWatcher } from 'node:fs';
import { fromNative } from '../lock/errors.js';
import { type HeldLock, type InodeKey, noteAcquired, noteReleased } from '../lock/held-locks.js';
import { native } from '../native/binding.js';
import { LeaseStaleError, type LeaseStaleReason } from './errors.js';
import { noteFence, takeFence, takeFenceSync } from './fence.js';
import { drop, FENCE, readSlotRacing } from './file.js';
import { watchLeaseFile } from './notice.js';
import { type LeaseWriteOptions, normalizeWriteOptions } from './options.js';

/** Everything release and the supersession notice need, kept apart from the Lease so it can be garbage-collected. */
interface LeaseState {
  fd: number;
  path: string | Buffer;
  display: string;
  key: InodeKey;
  token: number;
  controller: AbortController;
  /** Why the lease is no longer current; null while current. */
  stale: LeaseStaleError | null;
  released: boolean;
  closed: boolean;
  watcher: FSWatcher | null;
  /** Tail of this lease's fenced writes: one descriptor, so they must take turns in-process. */
  queue: Promise<void>;
  /** Fenced writes queued or running. */
  writes: number;
}

/** The lease whose fenced write the current async context is inside (so a nested write() runs at once). */
const inside = new AsyncLocalStorage<LeaseState>();

// What a lease holds that a synchronous lock() of this thread could wait on:
// the shared flock membership (the liveness byte and fence are OFD ranges no
// plain lock takes). Noted in the thread's held-locks table so such a
// lockSync() fails fast with EDEADLK instead of hanging.
const MEMBERSHIP: HeldLock = Object.freeze({ kind: 'flock', mode: 'shared', start: 0, length: 0 });

function markStale(state: LeaseState, reason: LeaseStaleReason, current: number | null = null): LeaseStaleError {
  if (state.stale === null) {
    state.stale = new LeaseStaleError(
      state.display,
      BigInt(state.token),
      reason,
      current === null ? null : BigInt(current),
    );
    state.watcher?.close();
    state.watcher = null;
    state.controller.abort(state.stale);
  }
  return state.stale;
}

/** Reads the slot (and the path) now; marks the lease stale when it is no longer current. */
function check(state: LeaseState): LeaseStaleError | null {
  if (state.stale !== null) return state.stale;
  let same: boolean;
  try {
    same = native.verify(state.fd, state.path);
  } catch {
    same = false;
  }
  if (!same) return markStale(state, 'replaced');
  const slot = readSlotRacing(state.fd, state.display);
  if (slot === null || slot.token < state.token) return markStale(state, 'replaced');
  if (slot.token !== state.token) return markStale(state, 'superseded', slot.token);
  return null;
}

function closeNow(state: LeaseState): void {
  if (state.closed) return;
  state.closed = true;
  state.watcher?.close();
  state.watcher = null;
  noteReleased(state.key, MEMBERSHIP);
  native.close(state.fd);
}

function releaseState(state: LeaseState): void {
  if (state.released) return;
  state.released = true;
  markStale(state, 'released');
  // A fenced write in progress holds the fence through this descriptor:
  // closing now would let a successor write while it still runs.
  if (state.writes === 0) closeNow(state);
}

const leaked = new FinalizationRegistry<LeaseState>((state) => {
  if (state.released) return;
  try {
    releaseState(state);
  } catch {
    // Thrown from a GC callback it would be an uncaught exception; the
    // environment's teardown closes the descriptor in any case.
  }
  process.emitWarning(
    `A Lease for ${state.display} was garbage-collected without release(); it was released by closing its ` +
      'descriptor. Call release() or hold it with `await using`.',
    { code: 'KERNEL_LOCK_LEASE_LEAKED', type: 'Warning' },
  );
});

/** What acquisition hands over to a new Lease. */
export interface LeaseInit {
  fd: number;
  path: string | Buffer;
  display: string;
  key: InodeKey;
  token: number;
  owner: string | undefined;
  takeoverAfter: number;
  acquiredAtMs: number;
  superseded: number | null;
}

function isThenable(value: unknown): boolean {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as { then?: unknown }).then === 'function'
  );
}

/** A fenced lease held by this process (see lease()). Release is idempotent. */
export class Lease implements Disposable, AsyncDisposable {
  /** The lock file's absolute path. */
  readonly path: string;
  /** The fencing token: strictly larger than every token handed out on this lock file before. */
  readonly token: bigint;
  /** The owner label, if one was given. */
  readonly owner: string | undefined;
  /** Milliseconds after which a waiter may supersede this lease (Infinity: never while alive). */
  readonly takeoverAfter: number;
  /** When the lease was granted (milliseconds since the epoch). */
  readonly acquiredAtMs: number;
  /** The token of the live holder this lease superseded, or null when the lease was free. */
  readonly superseded: bigint | null;

  readonly #state: LeaseState;

  /** @internal Use lease(). */
  constructor(init: LeaseInit) {
    this.path = init.display;
    this.token = BigInt(init.token);
    this.owner = init.owner;
    this.takeoverAfter = init.takeoverAfter;
    this.acquiredAtMs = init.acquiredAtMs;
    this.superseded = init.superseded === null ? null : BigInt(init.superseded);
    const state: LeaseState = {
      fd: init.fd,
      path: init.path,
      display: init.display,
      key: init.key,
      token: init.token,
      controller: new AbortController(),
      stale: null,
      released: false,
      closed: false,
      watcher: null,
      queue: Promise.resolve(),
      writes: 0,
    };
    this.#state = state;
    // Known to this thread as a holder of the file: inspection calls it ours,
    // and a lockSync() of the same file fails fast instead of hanging on it.
    noteAcquired(init.key, MEMBERSHIP);
    state.watcher = watchLeaseFile(init.fd, init.path, () => {
      try {
        check(state);
      } catch {
        // A damaged slot surfaces from the holder's next fenced write.
      }
    });
    leaked.register(this, state, this);
  }

  /** Aborted (reason: a LeaseStaleError) when the lease is superseded, released, or its file replaced. */
  get signal(): AbortSignal {
    return this.#state.controller.signal;
  }

  /** True once released. */
  get released(): boolean {
    return this.#state.released;
  }

  /** Whether the lease is current right now (one read of the token slot). */
  isCurrent(): boolean {
    try {
      return check(this.#state) === null;
    } catch {
      return false;
    }
  }

  /**
   * Throws a LeaseStaleError (code ELEASESTALE) unless the lease is current:
   * not superseded, not released, its file not replaced. Costs one read of
   * the token slot and one fstat/lstat pair. A check, not a fence: the lease
   * can be superseded right after it returns; write() has no such gap.
   */
  assertCurrent(): void {
    const stale = check(this.#state);
    if (stale !== null) throw stale;
  }

  /**
   * Runs `fn` under the fence, only while the lease is current: every
   * holder's fenced writes and every takeover take the same short kernel
   * lock, so once a successor has taken over, no fenced write of this lease
   * can land. `fn` must finish its writes before its promise settles (the
   * fence is held until then) and should be short: a takeover waits for it.
   * Rejects with LeaseStaleError when the lease is no longer current.
   */
  write<T>(fn: () => T | Promise<T>, options?: LeaseWriteOptions): Promise<T> {
    const state = this.#state;
    try {
      if (typeof fn !== 'function') throw new TypeError('kernel-lock: write(fn, options?) needs a function');
      // Already inside a fenced write of this lease: the fence is held.
      if (inside.getStore() === state) return Promise.resolve().then(fn);
      const { timeout, signal } = normalizeWriteOptions(options, false);
      if (state.stale !== null) throw state.stale;
      state.writes++;
      const run = async (): Promise<T> => {
        try {
          if (state.stale !== null) throw state.stale;
          const waiting = takeFence(state.fd, state.display, timeout, signal);
          if (waiting !== undefined) await waiting;
          noteFence(state.key, 1);
          try {
            const stale = check(state);
            if (stale !== null) throw stale;
            return await inside.run(state, fn);
          } finally {
            drop(state.fd, FENCE);
            noteFence(state.key, -1);
          }
        } finally {
          state.writes--;
          if (state.released && state.writes === 0) closeNow(state);
        }
      };
      const result = state.queue.then(run);
      state.queue = result.then(
        () => {},
        () => {},
      );
      return result;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  /**
   * Synchronous write(): runs `fn` (which must not return a promise) under
   * the fence while the lease is current; blocks the thread while another
   * holder's fenced write or a takeover holds the fence.
   */
  writeSync<T>(fn: () => T, options?: Omit<LeaseWriteOptions, 'signal'>): T {
    const state = this.#state;
    if (typeof fn !== 'function') throw new TypeError('kernel-lock: writeSync(fn, options?) needs a function');
    if (inside.getStore() === state) return fn();
    const { timeout } = normalizeWriteOptions(options, true);
    if (state.stale !== null) throw state.stale;
    if (state.writes > 0) {
      throw new Error(
        `kernel-lock: writeSync on ${state.display} while a write() of the same lease is queued or running; ` +
          'await it first (one descriptor carries both, so they cannot exclude each other)',
      );
    }
    try {
      takeFenceSync(state.fd, state.key, state.display, timeout);
    } catch (error) {
      throw fromNative(error, state.display);
    }
    let result: T;
    try {
      const stale = check(state);
      if (stale !== null) throw stale;
      result = inside.run(state, fn);
    } finally {
      drop(state.fd, FENCE);
    }
    if (isThenable(result)) {
      throw new TypeError(
        'kernel-lock: writeSync(fn) got a promise from fn; the fence was dropped before it settled, so its writes ' +
          'are not fenced. Use write() for asynchronous work',
      );
    }
    return result;
  }

  /** Releases the lease synchronously (a fenced write in progress finishes first). Safe to call more than once. */
  releaseSync(): void {
    if (this.#state.released) return;
    leaked.unregister(this);
    releaseState(this.#state);
  }

  /** Releases the lease; resolves once its descriptor is closed. Safe to call more than once. */
  async release(): Promise<void> {
    this.releaseSync();
    await this.#state.queue;
  }

  [Symbol.dispose](): void {
    this.releaseSync();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}
