// The sessions of one PgLocks: one shared session for uncontended locks,
// and waiting sessions, one per contended wait (a session lock cannot move
// between sessions, so the session that waited is the one that holds). Idle
// waiting sessions are kept for reuse for a while.

import type { Client } from 'pg';
import { abandon, openSession } from './client.js';
import { PgLockError } from './errors.js';
import { lockKey } from './keys.js';
import type { PgSettings } from './options.js';
import { LockSession } from './session.js';
import { CANCEL_SQL, type Objects, readySql, schemaSql } from './sql.js';

const IDLE_CLOSE_MS = 30_000;

/** Session management shared by acquisition, inspection and close. */
export class Sessions {
  readonly settings: PgSettings;
  readonly objects: Objects;
  readonly #connection: Record<string, unknown>;
  #shared: Promise<LockSession> | null = null;
  #schema: Promise<void> | null = null;
  readonly #idle: { session: LockSession; timer: NodeJS.Timeout }[] = [];
  readonly #live = new Set<LockSession>();
  /** Clients still connecting. */
  readonly #opening = new Set<Client>();
  /** Waiting sessions with a wait in progress: failed together if the shared session finds the server gone. */
  readonly waiting = new Set<LockSession>();
  #closed: PgLockError | null = null;

  constructor(connection: Record<string, unknown>, settings: PgSettings, objects: Objects) {
    this.#connection = connection;
    this.settings = settings;
    this.objects = objects;
  }

  /** Backend pids of this engine's live sessions. */
  selfPids(): Set<number> {
    return new Set([...this.#live].map((s) => s.info.backendPid));
  }

  /** Throws once close() was called. */
  checkOpen(): void {
    if (this.#closed !== null) throw this.#closed;
  }

  async #open(role: 'shared' | 'wait'): Promise<LockSession> {
    const { client, info } = await openSession(this.#connection, this.settings, this.#opening);
    const session = new LockSession(client, info, this.settings, role);
    this.#live.add(session);
    session.onEnd = (ended) => this.#ended(ended);
    if (this.#closed !== null) {
      await session.close(this.#closed);
      throw this.#closed;
    }
    return session;
  }

  #ended(session: LockSession): void {
    this.#live.delete(session);
    const index = this.#idle.findIndex((entry) => entry.session === session);
    if (index !== -1) {
      clearTimeout(this.#idle[index]!.timer);
      this.#idle.splice(index, 1);
    }
    if (session.role === 'shared') {
      this.#shared = null;
      // The shared session watches the server during waits: when it finds
      // the server gone, so are the waits (their sessions cannot heartbeat
      // while their statement runs).
      const reason = session.lostReason;
      if (reason !== null && reason.code === 'ERR_KERNEL_LOCK_PG_LOST') {
        for (const waiter of [...this.waiting]) waiter.lose(reason);
      }
    }
  }

  /** The shared session, connected (and the schema checked) on first use, again after it was lost. */
  async shared(): Promise<LockSession> {
    this.checkOpen();
    for (;;) {
      if (this.#shared === null) {
        const opening = this.#open('shared').then(async (session) => {
          await this.#ensureSchema(session);
          return session;
        });
        this.#shared = opening;
        opening.catch(() => {
          if (this.#shared === opening) this.#shared = null;
        });
      }
      const session = await this.#shared;
      if (session.lostReason === null) return session;
      if (this.#shared !== null && (await this.#shared) === session) this.#shared = null;
    }
  }

  /** A session for one wait: an idle one, or a new connection. */
  async waiter(): Promise<LockSession> {
    this.checkOpen();
    while (this.#idle.length > 0) {
      const entry = this.#idle.pop()!;
      clearTimeout(entry.timer);
      if (entry.session.lostReason === null) return entry.session;
    }
    if (this.#schema !== null) await this.#schema;
    return this.#open('wait');
  }

  /** Takes back a waiting session whose lock was released (or never granted). */
  recycle(session: LockSession): void {
    if (session.lostReason !== null) return;
    if (this.#closed !== null || session.claims.size > 0 || this.#idle.length >= this.settings.idleSessions) {
      session.close(this.#closed ?? closedError()).catch(() => {});
      return;
    }
    const timer = setTimeout(() => {
      const index = this.#idle.findIndex((entry) => entry.session === session);
      if (index !== -1) this.#idle.splice(index, 1);
      session.close(closedError()).catch(() => {});
    }, IDLE_CLOSE_MS);
    timer.unref();
    this.#idle.push({ session, timer });
  }

  /**
   * Cancels the statement a waiting session runs (pg_cancel_backend, sent
   * through the shared session). Resolves once the server has signalled the
   * backend; when that is impossible the waiting session is closed instead.
   */
  async cancel(session: LockSession): Promise<void> {
    try {
      const shared = await this.shared();
      await shared.query(CANCEL_SQL, [session.info.backendPid]);
    } catch (error) {
      session.lose(
        new PgLockError(
          'ERR_KERNEL_LOCK_PG_CONNECTION',
          'kernel-lock/pg: could not cancel a wait; its session was closed',
          {
            cause: error,
          },
        ),
      );
    }
  }

  async #ensureSchema(session: LockSession): Promise<void> {
    this.#schema ??= this.#createSchema(session);
    const pending = this.#schema;
    try {
      await pending;
    } catch (error) {
      if (this.#schema === pending) this.#schema = null;
      throw error;
    }
  }

  async #createSchema(session: LockSession): Promise<void> {
    const ready = await session.query(readySql(this.objects));
    if (ready[0]?.ready === 't') return;
    const { schema } = this.settings;
    if (!this.settings.createSchema) {
      throw new PgLockError(
        'ERR_KERNEL_LOCK_PG_SCHEMA',
        `kernel-lock/pg: the owner table ${this.objects.owners} or the sequence ${this.objects.tokens} does not exist and createSchema is false; create them with the SQL in docs/PG.md ("What to set up on the server")`,
      );
    }
    try {
      await session.query('BEGIN');
      // Concurrent first users would race on the catalog otherwise
      // (CREATE ... IF NOT EXISTS is not safe against a concurrent CREATE).
      await session.query('SELECT pg_advisory_xact_lock($1)', [lockKey('kernel-lock', `schema:${schema}`).toString()]);
      for (const statement of schemaSql(schema, this.objects)) await session.query(statement);
      await session.query('COMMIT');
    } catch (error) {
      await session.query('ROLLBACK').catch(() => {});
      throw new PgLockError(
        'ERR_KERNEL_LOCK_PG_SCHEMA',
        `kernel-lock/pg: cannot create the schema "${schema}" (${(error as Error).message}); grant CREATE on the database to this role, or have an administrator run the SQL in docs/PG.md and grant this role INSERT, SELECT, DELETE, UPDATE on ${this.objects.owners} and USAGE on ${this.objects.tokens}`,
        { cause: error },
      );
    }
  }

  /** Closes every session: the server drops their locks at once. Later calls fail. */
  async close(): Promise<void> {
    this.#closed ??= closedError();
    const reason = this.#closed;
    for (const entry of this.#idle.splice(0)) clearTimeout(entry.timer);
    // Connection attempts still in progress end now (their callers get an error).
    for (const client of this.#opening) abandon(client);
    const shared = this.#shared;
    this.#shared = null;
    const sessions = new Set(this.#live);
    if (shared !== null) {
      const session = await shared.catch(() => null);
      if (session !== null) sessions.add(session);
    }
    await Promise.all([...sessions].map((session) => session.close(reason)));
  }
}

function closedError(): PgLockError {
  return new PgLockError('ERR_KERNEL_LOCK_PG_CLOSED', 'kernel-lock/pg: this PgLocks was closed');
}
