// A PostgreSQL advisory lock held by this process: which session holds it,
// its fencing token, and the signal that aborts if the session is lost.
// Releasing is one statement (unlock + delete the owner record); the key
// stays claimed on its session until the server confirmed, so no new lock of
// the same key can stack on that session in between.
import type { EngineLock } from '../lock/engine.js';
import type { LockMode } from '../lock/options.js';
import { PgLockError } from './errors.js';
import { type HeldEntry, PgCode, type Row, sqlState } from './session.js';
import { type Objects, releaseSql } from './sql.js';

/** The parts of a LockSession a handle uses (kept structural so the public types need no `pg` types). */
export interface HoldingSession {
  readonly info: { readonly backendPid: number };
  readonly role: 'shared' | 'wait';
  readonly claims: Map<bigint, HeldEntry | null>;
  readonly lostReason: PgLockError | null;
  readonly validUntil: number;
  query(sql: string, params?: unknown[]): Promise<Row[]>;
  lose(reason: PgLockError): void;
  changed(): void;
}

/** What release needs; kept apart from the handle so the GC finalizer does not retain it. */
export interface HeldState {
  session: HoldingSession;
  key: bigint;
  mode: LockMode;
  name: string;
  objects: Objects;
  released: boolean;
  controller: AbortController;
  /** Hands a waiting session back to the engine once its lock is released. */
  recycle: (session: HoldingSession) => void;
}

/** Releases on the server; never rejects for a session that is gone (its locks went with it). */
export async function releaseHeld(state: HeldState): Promise<void> {
  if (state.released) return;
  state.released = true;
  const { session } = state;
  if (session.lostReason !== null) return;
  try {
    for (let attempt = 0; ; attempt += 1) {
      try {
        await session.query(releaseSql(state.objects, state.mode), [state.key.toString()]);
        break;
      } catch (error) {
        // A cancel meant for an earlier wait on this session can land on the
        // next statement: run it again.
        if (sqlState(error) !== PgCode.queryCanceled || attempt >= 2) throw error;
      }
    }
  } catch (error) {
    // Unreachable server, broken session: ending it is what releases the
    // lock now (the server drops a session's locks with the session).
    session.lose(lostOnRelease(error));
    return;
  }
  session.claims.delete(state.key);
  session.changed();
  if (session.role === 'wait') state.recycle(session);
}

function lostOnRelease(error: unknown): PgLockError {
  return new PgLockError(
    'ERR_KERNEL_LOCK_PG_LOST',
    `kernel-lock/pg: release failed (${(error as Error).message}); the session was closed, which releases its locks`,
    { cause: error },
  );
}

const leaked = new FinalizationRegistry<HeldState>((state) => {
  if (state.released) return;
  releaseHeld(state).catch(() => {});
  process.emitWarning(
    `A PgLockHandle for ${JSON.stringify(state.name)} was garbage-collected without release(); ` +
      'its lock was released. Call release() or hold it with `await using`.',
    { code: 'KERNEL_LOCK_HANDLE_LEAKED', type: 'Warning' },
  );
});

/** Details of the grant the handle keeps. */
export interface PgHandleInit {
  state: HeldState;
  namespace: string;
  token: bigint;
  acquiredAtMs: number;
}

/** A PostgreSQL advisory lock held by this process. Release is idempotent. */
export class PgLockHandle implements EngineLock {
  /** The lock's name. */
  readonly name: string;
  /** The key namespace it was taken in. */
  readonly namespace: string;
  /** The advisory lock key (what pg_advisory_lock was called with). */
  readonly key: bigint;
  readonly mode: LockMode;
  /**
   * Fencing token from the token sequence, drawn while the lock was held:
   * every later holder of any lock of this engine's schema draws a larger one.
   */
  readonly token: bigint;
  /** When the server granted the lock (server clock, ms since the epoch). */
  readonly acquiredAtMs: number;
  /** The server process of the session that holds the lock. */
  readonly backendPid: number;

  readonly #state: HeldState;

  /** @internal Use PgLocks.lock() or tryLock(). */
  constructor(init: PgHandleInit) {
    const { state } = init;
    this.#state = state;
    this.name = state.name;
    this.namespace = init.namespace;
    this.key = state.key;
    this.mode = state.mode;
    this.token = init.token;
    this.acquiredAtMs = init.acquiredAtMs;
    this.backendPid = state.session.info.backendPid;
    leaked.register(this, state, this);
  }

  /** When the lock was granted. */
  get acquiredAt(): Date {
    return new Date(this.acquiredAtMs);
  }

  /** Aborted when the session holding the lock is lost (reason: a PgLockError saying why). */
  get signal(): AbortSignal {
    return this.#state.controller.signal;
  }

  /** True once released. */
  get released(): boolean {
    return this.#state.released;
  }

  /**
   * True while the lock is held and the server has answered this session
   * recently enough that nobody else can have been granted the lock: checks
   * the clock itself, so it is right even when timers run late.
   */
  verify(): boolean {
    const s = this.#state;
    return (
      !s.released &&
      !s.controller.signal.aborted &&
      s.session.lostReason === null &&
      performance.now() < s.session.validUntil
    );
  }

  /** Releases the lock; resolves once the server has (or the session is gone). Safe to call more than once. */
  release(): Promise<void> {
    leaked.unregister(this);
    return releaseHeld(this.#state);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}
