// The one small interface every lock engine implements: the kernel's file
// locks (this layer) and PostgreSQL advisory locks (src/pg/, which imports
// this file; never the reverse). Code that must run on either, such as the
// session backend and the CLI, takes a LockEngine and names its lock with a
// string: a file path for the kernel, any name for PostgreSQL.
import { lock, tryLock } from './acquire.js';
import type { LockHandle } from './handle.js';
import type { LockKind, LockMode } from './options.js';

/** Options every engine's lock() accepts. */
export interface EngineLockOptions {
  /** Default 'exclusive'. */
  mode?: LockMode;
  /** Milliseconds to wait; Infinity (default) waits forever, 0 makes one attempt. */
  timeout?: number;
  /** Aborts a pending wait; the promise rejects with an AbortError. */
  signal?: AbortSignal;
  /** Free-text label stored in the owner record. */
  owner?: string;
}

/** Options every engine's tryLock() accepts: one attempt, so no timeout and nothing to abort. */
export type EngineTryLockOptions = Omit<EngineLockOptions, 'timeout' | 'signal'>;

/** A lock held through an engine. Release is idempotent. */
export interface EngineLock extends AsyncDisposable {
  /** The lock's name (the kernel engine: the lock file's absolute path). */
  readonly name: string;
  readonly mode: LockMode;
  /** When the lock was granted (milliseconds since the epoch). */
  readonly acquiredAtMs: number;
  /**
   * Fencing token: strictly greater than the token of every earlier holder of
   * this name, so a resource that remembers the highest token it has seen can
   * refuse a holder that lost its lock. null when the engine has none.
   */
  readonly token: bigint | null;
  /**
   * Aborted when the lock is lost while held (the engine can no longer
   * promise exclusion); its reason says why. Never aborted by release().
   */
  readonly signal: AbortSignal;
  /** True once released. */
  readonly released: boolean;
  /** True while the lock is held and the engine can vouch for it. Check it before each protected write. */
  verify(): boolean;
  /** Releases the lock; resolves when the engine has given it back. */
  release(): Promise<void>;
}

/** A lock engine: the same calls over the kernel or a PostgreSQL server. */
export interface LockEngine {
  /** Which engine this is ('kernel' or 'pg'). */
  readonly kind: string;
  /** Acquires the lock `name`; rejects with LockTimeoutError (code ELOCKED) or AbortError. */
  lock(name: string, options?: EngineLockOptions): Promise<EngineLock>;
  /** One attempt; resolves to null only when someone else holds the lock. */
  tryLock(name: string, options?: EngineTryLockOptions): Promise<EngineLock | null>;
  /** Runs `fn` while holding the lock; releases when `fn` settles. */
  withLock<T>(name: string, fn: (lock: EngineLock) => T | Promise<T>, options?: EngineLockOptions): Promise<T>;
}

/** Defaults the kernel engine applies to every call. */
export interface KernelEngineOptions {
  /** Default 'flock'. */
  kind?: LockKind;
  /** Unlink the lock file on release when this is the last holder. Default true. */
  removeOnRelease?: boolean;
}

/** A kernel lock seen through the engine interface; `handle` is the kernel handle itself. */
export interface KernelEngineLock extends EngineLock {
  readonly handle: LockHandle;
}

// A kernel lock is never lost while its process lives: nothing aborts this.
const NEVER_ABORTED: AbortSignal = new AbortController().signal;

function wrap(handle: LockHandle): KernelEngineLock {
  return {
    handle,
    name: handle.path,
    mode: handle.mode,
    acquiredAtMs: handle.acquiredAtMs,
    token: null,
    signal: NEVER_ABORTED,
    get released() {
      return handle.released;
    },
    verify: () => handle.verify(),
    release: () => handle.release(),
    [Symbol.asyncDispose]: () => handle.release(),
  };
}

/** The kernel engine: lock(), tryLock() and withLock() of this package, with `defaults` applied. */
export function kernelEngine(defaults: KernelEngineOptions = {}): LockEngine {
  const fixed = { ...defaults };
  return {
    kind: 'kernel',
    async lock(name, options) {
      return wrap(await lock(name, { ...fixed, ...options }));
    },
    async tryLock(name, options) {
      const handle = await tryLock(name, { ...fixed, ...options });
      return handle === null ? null : wrap(handle);
    },
    async withLock(name, fn, options) {
      if (typeof fn !== 'function') throw new TypeError('kernel-lock: withLock(name, fn, options?) needs a function');
      const held = wrap(await lock(name, { ...fixed, ...options }));
      try {
        return await fn(held);
      } finally {
        await held.release();
      }
    },
  };
}
