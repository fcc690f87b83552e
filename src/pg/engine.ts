// PgLocks: kernel-lock's API over PostgreSQL advisory locks, for processes
// on several hosts that share one database. Same shapes as the kernel
// engine (lock, tryLock, withLock, handle with release / await using /
// verify), plus what a lock held over a network needs: a signal that aborts
// when the session is lost, and a fencing token.
import type { LockEngine } from '../lock/engine.js';
import { acquire } from './acquire.js';
import type { PgLockHandle } from './handle.js';
import { inspectKeys } from './inspect.js';
import type { PgLockInspection } from './inspect-types.js';
import { lockKey } from './keys.js';
import {
  normalizeConnection,
  normalizeLockOptions,
  normalizeSettings,
  type PgConnection,
  type PgLockOptions,
  type PgLocksOptions,
  type PgTimings,
  type PgTryLockOptions,
  rejectWaitOptions,
} from './options.js';
import { Sessions } from './sessions.js';
import { objectsIn } from './sql.js';

/**
 * Advisory locks on one PostgreSQL database. Connects lazily; close() (or
 * `await using`) ends its sessions, which releases every lock they hold.
 */
export class PgLocks implements LockEngine, AsyncDisposable {
  readonly kind = 'pg';
  /** The key namespace (lock keys are a digest of namespace and name). */
  readonly namespace: string;
  /** The session timings in force. */
  readonly timings: Readonly<PgTimings>;
  readonly #sessions: Sessions;

  constructor(connection: PgConnection, options?: PgLocksOptions) {
    const settings = normalizeSettings(options);
    this.#sessions = new Sessions(normalizeConnection(connection), settings, objectsIn(settings.schema));
    this.namespace = settings.namespace;
    const {
      namespace: _n,
      schema: _s,
      createSchema: _c,
      allowSessionPooler: _a,
      idleSessions: _i,
      ...timings
    } = settings;
    this.timings = Object.freeze(timings);
  }

  /**
   * Acquires the lock `name`, waiting on the server (never polling) until it
   * is free, the timeout expires (PgLockTimeoutError, code ELOCKED, naming the
   * holder) or the signal aborts (AbortError).
   */
  async lock(name: string, options?: PgLockOptions): Promise<PgLockHandle> {
    const req = normalizeLockOptions(name, options, Number.POSITIVE_INFINITY);
    this.#sessions.checkOpen();
    return (await acquire(this.#sessions, req, false))!;
  }

  /** One attempt; resolves to null only when another session holds the lock. */
  async tryLock(name: string, options?: PgTryLockOptions): Promise<PgLockHandle | null> {
    rejectWaitOptions(options);
    const req = normalizeLockOptions(name, options, 0);
    this.#sessions.checkOpen();
    return acquire(this.#sessions, req, true);
  }

  /** Runs `fn` while holding the lock; releases when `fn` settles. `fn` should watch `lock.signal`. */
  async withLock<T>(name: string, fn: (lock: PgLockHandle) => T | Promise<T>, options?: PgLockOptions): Promise<T> {
    if (typeof fn !== 'function') throw new TypeError('kernel-lock/pg: withLock(name, fn, options?) needs a function');
    const handle = await this.lock(name, options);
    try {
      return await fn(handle);
    } finally {
      await handle.release();
    }
  }

  /**
   * Opens the shared session now (and checks the server and the schema)
   * instead of at the first lock(), whose timeout would otherwise include
   * connecting. Rejects as lock() would (PgLockError with a code).
   */
  async connect(): Promise<void> {
    await this.#sessions.shared();
  }

  /** The advisory lock key of `name` in this namespace. */
  keyOf(name: string): bigint {
    return lockKey(this.namespace, normalizeLockOptions(name, undefined, 0).name);
  }

  /** Who holds and who waits for `name`, according to the server. */
  async inspect(name: string): Promise<PgLockInspection> {
    const key = this.keyOf(name);
    const session = await this.#sessions.shared();
    const [inspection] = await inspectKeys(session, this.#sessions.objects, {
      key,
      name,
      namespace: this.namespace,
      selfPids: this.#sessions.selfPids(),
    });
    return inspection!;
  }

  /** Every advisory lock held or awaited in the database (also those of other programs, without names). */
  async scan(): Promise<PgLockInspection[]> {
    const session = await this.#sessions.shared();
    return inspectKeys(session, this.#sessions.objects, {
      key: null,
      name: null,
      namespace: null,
      selfPids: this.#sessions.selfPids(),
    });
  }

  /** Ends every session (the server drops their locks at once; held handles' signals abort). */
  close(): Promise<void> {
    return this.#sessions.close();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
