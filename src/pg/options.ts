// Validation of the PostgreSQL engine's options, done before anything
// connects, and the timing every lock session derives from one number: how
// long the server waits for a silent client before it ends the session.
import type { LockMode } from '../lock/options.js';

/** How to reach the server: a connection URL, or node-postgres client settings. */
export type PgConnection = string | PgConnectionOptions;

/**
 * node-postgres client settings (host, port, user, password, database, ssl,
 * connectionString, connectionTimeoutMillis, ...), passed through to `pg`.
 * `query_timeout`, `statement_timeout` and `lock_timeout` are refused: a lock
 * wait is bounded on the server by the lock's own timeout.
 */
export interface PgConnectionOptions {
  connectionString?: string;
  host?: string;
  port?: number;
  user?: string;
  database?: string;
  password?: string | (() => string | Promise<string>);
  ssl?: unknown;
  connectionTimeoutMillis?: number;
  [setting: string]: unknown;
}

/** Options of the PostgreSQL engine (new PgLocks(connection, options)). */
export interface PgLocksOptions {
  /** Key namespace: a lock's key is a 64-bit digest of namespace and name. Default 'kernel-lock'. */
  namespace?: string;
  /** Schema of the owner table and the token sequence. Default 'kernel_lock'. */
  schema?: string;
  /** Create the schema, table and sequence when missing (needs CREATE on the database). Default true. */
  createSchema?: boolean;
  /**
   * How long the server waits for a silent client (host gone, link cut)
   * before it ends the session and drops its locks: the session's
   * tcp_user_timeout, with keepalives to match. Holders are told they lost
   * the lock (signal aborted, verify() false) after 60% of it, before the
   * server can give the lock to anyone else. Default 10 000 ms, at least 1000.
   */
  deadPeerMs?: number;
  /**
   * Accept a pooler in session mode between this process and the server.
   * Default false: a pooler is detected and refused, because in transaction
   * mode it hands one server session (and its locks) to several clients.
   */
  allowSessionPooler?: boolean;
  /** Idle waiting sessions kept for reuse (each contended wait needs a session of its own). Default 4. */
  idleSessions?: number;
}

/** Engine options after validation, with the derived timings. */
export interface PgSettings {
  namespace: string;
  schema: string;
  createSchema: boolean;
  allowSessionPooler: boolean;
  idleSessions: number;
  /** Server side: tcp_user_timeout, in ms. */
  deadPeerMs: number;
  /** Server side: tcp_keepalives_idle / _interval (seconds) and _count. */
  keepalivesIdle: number;
  keepalivesInterval: number;
  keepalivesCount: number;
  /** Server side (PostgreSQL >= 14): client_connection_check_interval, in ms. */
  checkIntervalMs: number;
  /** Client side: a holder whose session did not answer within this long (since the query was sent) has lost its locks. */
  lossDeadlineMs: number;
  /** Client side: a session holding locks sends a heartbeat this often. */
  heartbeatMs: number;
}

/** The timings PgLocks derived from deadPeerMs (see docs/PG.md, "Loss detection"). */
export type PgTimings = Omit<
  PgSettings,
  'namespace' | 'schema' | 'createSchema' | 'allowSessionPooler' | 'idleSessions'
>;

/** Options of PgLocks.lock(). */
export interface PgLockOptions {
  /** Default 'exclusive'. */
  mode?: LockMode;
  /** Milliseconds to wait; Infinity (default) waits forever, 0 makes one attempt. The wait is bounded by the server (lock_timeout). */
  timeout?: number;
  /** Aborts a pending wait (the server-side wait is cancelled); the promise rejects with an AbortError. */
  signal?: AbortSignal;
  /** Free-text label stored in the owner record (cut at 256 characters). */
  owner?: string;
}

/** Options of PgLocks.tryLock(). */
export type PgTryLockOptions = Omit<PgLockOptions, 'timeout' | 'signal'>;

/** A lock call after validation. */
export interface PgLockRequest {
  name: string;
  mode: LockMode;
  timeout: number;
  signal: AbortSignal | undefined;
  owner: string | undefined;
}

const ENGINE_OPTIONS = new Set([
  'namespace',
  'schema',
  'createSchema',
  'deadPeerMs',
  'allowSessionPooler',
  'idleSessions',
]);
const LOCK_OPTIONS = new Set(['mode', 'timeout', 'signal', 'owner']);
/** Settings that would put a clock on a lock wait other than the lock's own timeout. */
const REFUSED_SETTINGS: Record<string, string> = {
  query_timeout:
    'a client-side query timeout abandons the wait while the server keeps waiting and may grant the lock to nobody who knows',
  statement_timeout: 'a statement timeout would cancel lock waits; pass { timeout } to lock()',
  lock_timeout: 'each wait sets its own lock_timeout from lock({ timeout })',
  idle_in_transaction_session_timeout: 'lock sessions set their own session timeouts',
};
const MAX_NAME = 4096;
const MAX_OWNER = 256;
const IDENTIFIER = /^[a-z_][a-z0-9_]{0,62}$/;

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  return typeof value === 'function' ? 'a function' : `an ${Array.isArray(value) ? 'array' : 'object'}`;
}

function checkKeys(object: object, known: Set<string>, what: string): void {
  for (const key of Object.keys(object)) {
    if (!known.has(key)) {
      throw new TypeError(`kernel-lock/pg: unknown ${what} ${JSON.stringify(key)}; known: ${[...known].join(', ')}`);
    }
  }
}

function text(value: unknown, option: string, max: number, fallback?: string): string {
  if (value === undefined && fallback !== undefined) return fallback;
  if (typeof value !== 'string' || value.length === 0) {
    throw new TypeError(`kernel-lock/pg: ${option} must be a non-empty string, got ${describe(value)}`);
  }
  if (value.includes('\0')) throw new TypeError(`kernel-lock/pg: ${option} must not contain NUL characters`);
  if (value.length > max) throw new RangeError(`kernel-lock/pg: ${option} is longer than ${max} characters`);
  return value;
}

/** Validates the connection argument; returns node-postgres settings (a copy). */
export function normalizeConnection(connection: unknown): Record<string, unknown> {
  if (typeof connection === 'string') {
    if (connection.length === 0) throw new TypeError('kernel-lock/pg: the connection URL must not be empty');
    return { connectionString: connection };
  }
  if (typeof connection !== 'object' || connection === null || Array.isArray(connection)) {
    throw new TypeError(
      `kernel-lock/pg: connection must be a URL string or node-postgres settings, got ${describe(connection)}`,
    );
  }
  const settings = { ...(connection as Record<string, unknown>) };
  for (const [name, why] of Object.entries(REFUSED_SETTINGS)) {
    if (settings[name] !== undefined)
      throw new TypeError(`kernel-lock/pg: connection setting ${name} is refused: ${why}`);
  }
  return settings;
}

/** Validates engine options and derives the session timings. */
export function normalizeSettings(options: unknown): PgSettings {
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError(`kernel-lock/pg: options must be an object, got ${describe(options)}`);
  }
  const opts = (options ?? {}) as PgLocksOptions;
  checkKeys(opts, ENGINE_OPTIONS, 'option');
  const namespace = text(opts.namespace, 'option namespace', MAX_NAME, 'kernel-lock');
  const schema = text(opts.schema, 'option schema', 63, 'kernel_lock');
  if (!IDENTIFIER.test(schema)) {
    throw new TypeError(
      `kernel-lock/pg: option schema must be a lower-case SQL identifier (a-z, 0-9, _), got ${describe(schema)}`,
    );
  }
  const flags: Record<string, boolean> = {};
  for (const [name, fallback] of [
    ['createSchema', true],
    ['allowSessionPooler', false],
  ] as const) {
    const value = opts[name] ?? fallback;
    if (typeof value !== 'boolean') throw new TypeError(`kernel-lock/pg: option ${name} must be a boolean`);
    flags[name] = value;
  }
  const deadPeerMs = opts.deadPeerMs ?? 10_000;
  if (typeof deadPeerMs !== 'number' || !Number.isInteger(deadPeerMs) || deadPeerMs < 1000 || deadPeerMs > 3_600_000) {
    throw new RangeError(
      `kernel-lock/pg: option deadPeerMs must be an integer number of milliseconds from 1000 to 3600000, got ${describe(deadPeerMs)}`,
    );
  }
  const idleSessions = opts.idleSessions ?? 4;
  if (typeof idleSessions !== 'number' || !Number.isInteger(idleSessions) || idleSessions < 0 || idleSessions > 1000) {
    throw new RangeError(`kernel-lock/pg: option idleSessions must be an integer from 0 to 1000`);
  }
  // Keepalive timings are whole seconds. With tcp_user_timeout set, Linux
  // ends the connection at the first keepalive tick after the peer has been
  // silent for tcp_user_timeout (the probe count no longer matters), so the
  // server drops the session between deadPeerMs and deadPeerMs + interval
  // after it last heard from us, never before.
  const keepalivesIdle = Math.max(1, Math.floor(deadPeerMs / 3000));
  const keepalivesInterval = Math.max(1, Math.floor(deadPeerMs / 6000));
  const keepalivesCount = Math.max(1, Math.ceil((deadPeerMs / 1000 - keepalivesIdle) / keepalivesInterval));
  const lossDeadlineMs = Math.floor(deadPeerMs * 0.6);
  return {
    namespace,
    schema,
    createSchema: flags.createSchema!,
    allowSessionPooler: flags.allowSessionPooler!,
    idleSessions,
    deadPeerMs,
    keepalivesIdle,
    keepalivesInterval,
    keepalivesCount,
    checkIntervalMs: Math.max(500, Math.floor(deadPeerMs / 4)),
    lossDeadlineMs,
    heartbeatMs: Math.max(100, Math.floor(lossDeadlineMs / 4)),
  };
}

function isAbortSignal(value: unknown): value is AbortSignal {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as AbortSignal).aborted === 'boolean' &&
    typeof (value as AbortSignal).addEventListener === 'function'
  );
}

/** Validates one lock()/tryLock() call; throws before anything is sent. */
export function normalizeLockOptions(name: unknown, options: unknown, defaultTimeout: number): PgLockRequest {
  const lockName = text(name, 'the lock name', MAX_NAME);
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError(`kernel-lock/pg: options must be an object, got ${describe(options)}`);
  }
  const opts = (options ?? {}) as PgLockOptions;
  checkKeys(opts, LOCK_OPTIONS, 'option');
  const mode = opts.mode === undefined ? 'exclusive' : opts.mode;
  if (mode !== 'exclusive' && mode !== 'shared') {
    throw new TypeError(`kernel-lock/pg: option mode must be 'exclusive' or 'shared', got ${describe(mode)}`);
  }
  const timeout = opts.timeout === undefined ? defaultTimeout : opts.timeout;
  if (typeof timeout !== 'number' || Number.isNaN(timeout) || timeout < 0) {
    throw new RangeError(
      `kernel-lock/pg: option timeout must be >= 0 milliseconds (0 = one attempt, Infinity = wait forever), got ${describe(timeout)}`,
    );
  }
  if (opts.signal !== undefined && !isAbortSignal(opts.signal)) {
    throw new TypeError(`kernel-lock/pg: option signal must be an AbortSignal, got ${describe(opts.signal)}`);
  }
  let owner: string | undefined;
  if (opts.owner !== undefined) {
    if (typeof opts.owner !== 'string') {
      throw new TypeError(`kernel-lock/pg: option owner must be a string, got ${describe(opts.owner)}`);
    }
    owner = opts.owner.replaceAll('\0', '').slice(0, MAX_OWNER);
  }
  return { name: lockName, mode, timeout, signal: opts.signal, owner };
}

/** Throws when a tryLock() call passes options only lock() takes. */
export function rejectWaitOptions(options: unknown): void {
  for (const name of ['timeout', 'signal']) {
    if (typeof options === 'object' && options !== null && name in options) {
      throw new TypeError(
        `kernel-lock/pg: option ${name} is not accepted by tryLock, which makes exactly one attempt; use lock() with a timeout or signal`,
      );
    }
  }
}
