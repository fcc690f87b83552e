// One server session (one connection) and what this process knows about it:
// which keys it holds, and since when the server is known to have heard from
// it. That second fact is what lets a holder learn it lost its locks BEFORE
// anyone else can be granted them:
//
//   The server ends a silent session (and drops its locks) no earlier than
//   tcp_user_timeout (deadPeerMs) after it last received something from us.
//   It received every query no earlier than we sent it. So if a reply
//   arrived to a query we sent at time t, nobody else can be granted our
//   locks before t + deadPeerMs. A session holding locks heartbeats; when
//   no reply to a query sent within lossDeadlineMs (60% of deadPeerMs) has
//   arrived, its locks are declared lost: signals abort, verify() turns
//   false, the socket is destroyed. verify() compares the clock itself, so
//   it is right even when a blocked event loop delays the timers.
import { createHash } from 'node:crypto';
import type { Client } from 'pg';
import type { SessionInfo } from './client.js';
import { PgLockError } from './errors.js';
import type { PgSettings } from './options.js';
import { HEARTBEAT_SQL } from './sql.js';

/** A lock this session holds, as the session sees it. */
export interface HeldEntry {
  /** Called once when the session is lost while the lock is held. */
  lose(reason: PgLockError): void;
}

/** A row as the session returns it: every value is the server's text (or null). */
export type Row = Record<string, string | null>;

/** Error codes of PostgreSQL the engine acts on. */
export const PgCode = {
  lockNotAvailable: '55P03',
  queryCanceled: '57014',
  adminShutdown: '57P01',
} as const;

/** The SQLSTATE of a server error, if `error` is one. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

interface Stream {
  ref(): void;
  unref(): void;
  destroy(): void;
}

const statementNames = new Map<string, string>();

/** A stable prepared-statement name for `sql`. */
function statementName(sql: string): string {
  let name = statementNames.get(sql);
  if (name === undefined) {
    name = `kernel_lock_${createHash('sha256').update(sql).digest('hex').slice(0, 16)}`;
    statementNames.set(sql, name);
  }
  return name;
}

/** One lock session. */
export class LockSession {
  readonly client: Client;
  readonly info: SessionInfo;
  /** 'shared': the process's session for uncontended locks; 'wait': one contended wait, then its lock. */
  readonly role: 'shared' | 'wait';
  /**
   * Keys held, or being acquired (null), on this session. A key is never
   * locked twice on one session: session locks stack, and two callers of one
   * process would both "own" the lock.
   */
  readonly claims = new Map<bigint, HeldEntry | null>();
  /** Why the session ended, once it has. */
  lostReason: PgLockError | null = null;
  /** Called once when the session ends (lost or closed). */
  onEnd: ((session: LockSession) => void) | undefined;

  readonly #settings: PgSettings;
  #freshAt = Number.NEGATIVE_INFINITY;
  #inflight = 0;
  #watchers = 0;
  #heartbeatTimer: NodeJS.Timeout | undefined;
  #deadlineTimer: NodeJS.Timeout | undefined;
  #beating = false;

  constructor(client: Client, info: SessionInfo, settings: PgSettings, role: 'shared' | 'wait') {
    this.client = client;
    this.info = info;
    this.role = role;
    this.#settings = settings;
    client.on('error', (error: Error) => this.lose(lostConnection(error)));
    client.on('end', () => this.lose(lostConnection(new Error('the connection was closed'))));
    this.#refresh();
  }

  /** Until when (performance.now() time) the locks of this session are known to be held. */
  get validUntil(): number {
    return this.#freshAt + this.#settings.lossDeadlineMs;
  }

  /** performance.now() at which the last query that got a reply was sent. */
  get freshAt(): number {
    return this.#freshAt;
  }

  /** Number of locks held (claims that were granted). */
  get heldCount(): number {
    let held = 0;
    for (const entry of this.claims.values()) if (entry !== null) held += 1;
    return held;
  }

  /**
   * Runs one statement; every value of the rows is text. A reply proves the
   * server heard from us no earlier than the moment the query was handed to
   * the client, which is never later than it was sent.
   */
  async query(sql: string, params?: unknown[]): Promise<Row[]> {
    if (this.lostReason !== null) throw this.lostReason;
    const sentAt = performance.now();
    this.#inflight += 1;
    this.#refresh();
    try {
      // Statements with parameters are prepared once per session (named):
      // planning the grant statement costs more than running it.
      const result =
        params === undefined
          ? await this.client.query<Row>(sql)
          : await this.client.query<Row>({ name: statementName(sql), text: sql, values: params });
      if (sentAt > this.#freshAt) this.#freshAt = sentAt;
      return result.rows;
    } finally {
      this.#inflight -= 1;
      this.#refresh();
    }
  }

  /** After a failed statement: when the error ended the session, marks it lost; returns the loss reason, if any. */
  failed(error: unknown): PgLockError | null {
    if (this.lostReason === null && endsSession(error)) this.lose(lostConnection(error as Error));
    return this.lostReason;
  }

  /** Keeps the heartbeat going while a wait elsewhere relies on this session to notice a dead server. */
  watch(): () => void {
    this.#watchers += 1;
    this.#refresh();
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.#watchers -= 1;
      this.#refresh();
    };
  }

  /** Re-evaluates timers and the socket's hold on the event loop after claims changed. */
  changed(): void {
    this.#refresh();
  }

  /**
   * Ends the session at once: held locks are declared lost (their signals
   * abort with `reason`), the socket is destroyed (the server drops the
   * session's locks when it sees the connection close, or after deadPeerMs
   * when it cannot), pending queries fail.
   */
  lose(reason: PgLockError): void {
    if (this.lostReason !== null) return;
    this.lostReason = reason;
    this.#stopTimers();
    const entries = [...this.claims.values()];
    this.claims.clear();
    for (const entry of entries) entry?.lose(reason);
    this.#stream()?.destroy();
    this.onEnd?.(this);
  }

  /** Closes the session politely (the server drops its locks at once). */
  async close(reason: PgLockError): Promise<void> {
    if (this.lostReason === null) {
      this.lostReason = reason;
      this.#stopTimers();
      const entries = [...this.claims.values()];
      this.claims.clear();
      for (const entry of entries) entry?.lose(reason);
      this.onEnd?.(this);
    }
    // Waiting for the goodbye must keep the process alive (an unref'd
    // socket would let it exit mid-await, losing the caller's exit status).
    this.#stream()?.ref();
    await this.client.end().catch(() => {});
  }

  #stream(): Stream | undefined {
    return (this.client as unknown as { connection?: { stream?: Stream } }).connection?.stream;
  }

  #active(): boolean {
    return this.lostReason === null && (this.heldCount > 0 || this.#watchers > 0);
  }

  #refresh(): void {
    if (this.lostReason !== null) return;
    // An idle socket does not keep the process alive: a process whose only
    // business left is a held lock exits, and the server drops the lock, as
    // the kernel does for a file lock. A query in flight (a lock() someone
    // awaits) does keep it alive.
    const stream = this.#stream();
    if (this.#inflight > 0) stream?.ref();
    else stream?.unref();
    if (!this.#active()) {
      this.#stopTimers();
      return;
    }
    if (this.#heartbeatTimer === undefined && !this.#beating) {
      this.#heartbeatTimer = setTimeout(() => this.#beat(), this.#settings.heartbeatMs);
      this.#heartbeatTimer.unref();
    }
    if (this.#deadlineTimer === undefined) this.#armDeadline();
  }

  #armDeadline(): void {
    const wait = Math.max(0, this.validUntil - performance.now());
    this.#deadlineTimer = setTimeout(() => this.#checkDeadline(), Math.min(wait, 2 ** 31 - 1));
    this.#deadlineTimer.unref();
  }

  #checkDeadline(): void {
    this.#deadlineTimer = undefined;
    if (!this.#active()) return;
    if (performance.now() >= this.validUntil) {
      const silentMs = Math.round(performance.now() - this.#freshAt);
      this.lose(
        new PgLockError(
          'ERR_KERNEL_LOCK_PG_LOST',
          `kernel-lock/pg: no answer from PostgreSQL to a query sent ${silentMs} ms ago (loss deadline ${this.#settings.lossDeadlineMs} ms): the server may end this session and give its locks away ${this.#settings.deadPeerMs} ms after it last heard from us, so they are treated as lost now`,
        ),
      );
      return;
    }
    this.#armDeadline();
  }

  async #beat(): Promise<void> {
    this.#heartbeatTimer = undefined;
    if (!this.#active()) return;
    this.#beating = true;
    try {
      const rows = await this.query(HEARTBEAT_SQL);
      const pid = Number(rows[0]?.pid);
      if (pid !== this.info.backendPid) {
        // The same connection answering from another server process: a
        // transaction pooler moved us, and our locks stayed behind.
        this.lose(
          new PgLockError(
            'ERR_KERNEL_LOCK_PG_POOLER',
            `kernel-lock/pg: the session's backend changed from ${this.info.backendPid} to ${pid}: a transaction pooler is between this process and PostgreSQL, and the locks stayed with the old backend; connect to PostgreSQL directly`,
          ),
        );
        return;
      }
    } catch (error) {
      if (!(error instanceof PgLockError)) this.lose(lostConnection(error as Error));
      return;
    } finally {
      this.#beating = false;
    }
    this.#refresh();
  }

  #stopTimers(): void {
    if (this.#heartbeatTimer !== undefined) clearTimeout(this.#heartbeatTimer);
    if (this.#deadlineTimer !== undefined) clearTimeout(this.#deadlineTimer);
    this.#heartbeatTimer = undefined;
    this.#deadlineTimer = undefined;
  }
}

/**
 * Did `error` end the session (connection closed or reset, a FATAL from the
 * server such as a shutdown or pg_terminate_backend), rather than only the
 * statement (a lock timeout, a cancel, a deadlock)?
 */
export function endsSession(error: unknown): boolean {
  const state = sqlState(error);
  const severity = (error as { severity?: unknown } | null)?.severity;
  return (
    state === undefined ||
    severity === 'FATAL' ||
    severity === 'PANIC' ||
    state.startsWith('08') ||
    state.startsWith('57P')
  );
}

/** The reason a session ended because its connection failed. */
export function lostConnection(error: Error): PgLockError {
  const admin =
    sqlState(error) === PgCode.adminShutdown ? ' (the server is shutting down or the session was terminated)' : '';
  return new PgLockError(
    'ERR_KERNEL_LOCK_PG_LOST',
    `kernel-lock/pg: the PostgreSQL session ended: ${error.message}${admin}; its locks are gone`,
    { cause: error },
  );
}
