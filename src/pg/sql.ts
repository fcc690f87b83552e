// Every statement the engine sends, in one place. Each acquisition, release
// and cleanup is ONE statement (one round trip): the advisory lock call, the
// owner record and the fencing token together.
//
// The owner table is UNLOGGED: it writes no WAL, so recording an owner costs
// no disk flush, and a server crash empties it, as it empties the lock table
// it describes. The token sequence is an ordinary (logged) sequence: nextval
// forces a WAL flush before its transaction commits whenever it logs ahead,
// so a token is never handed out twice, even across a crash.
//
// Values come back as text (the session's type parser returns raw strings):
// 64-bit keys and tokens must not pass through a JavaScript number, and a
// global type parser the application installed must not change our rows.
import type { LockMode } from '../lock/options.js';

/** The SQL identifiers of the engine's objects in `schema`. */
export interface Objects {
  owners: string;
  tokens: string;
}

/** Names of the owner table and token sequence in `schema` (validated as a plain lower-case identifier). */
export function objectsIn(schema: string): Objects {
  return { owners: `"${schema}".owners`, tokens: `"${schema}".tokens` };
}

/** Is the schema in place? One row: ready ('t' or 'f'). */
export function readySql(o: Objects): string {
  return `SELECT (to_regclass('${o.owners}') IS NOT NULL AND to_regclass('${o.tokens}') IS NOT NULL) AS ready`;
}

/** The schema, for createSchema and for DBAs (docs/PG.md prints the same). */
export function schemaSql(schema: string, o: Objects): string[] {
  return [
    `CREATE SCHEMA IF NOT EXISTS "${schema}"`,
    `CREATE UNLOGGED TABLE IF NOT EXISTS ${o.owners} (
  key bigint NOT NULL,
  backend_pid integer NOT NULL,
  backend_start_us bigint NOT NULL,
  namespace text NOT NULL,
  name text NOT NULL,
  mode text NOT NULL,
  host text NOT NULL,
  pid integer NOT NULL,
  owner text,
  token bigint NOT NULL,
  acquired_at timestamptz NOT NULL,
  PRIMARY KEY (key, backend_pid)
)`,
    `CREATE SEQUENCE IF NOT EXISTS ${o.tokens} AS bigint`,
    `COMMENT ON TABLE ${o.owners} IS 'kernel-lock: who holds which advisory lock (trusted only while backend_pid holds the key in pg_locks)'`,
  ];
}

/** The advisory lock key half-words of pg_locks, as one signed 64-bit value. */
const LOCK_KEY = '((l.classid::int8 << 32) | l.objid::int8)';
/**
 * A record belongs to the session `a` that holds the key now: same pid,
 * and the same backend start where the role may see it (pg_stat_activity
 * hides backend_start of other roles' sessions unless the role has
 * pg_read_all_stats). Without it a record could only be mistaken if a
 * crashed holder's pid were reused by a session that holds the same 64-bit
 * key without being a kernel-lock session (a kernel-lock session overwrites
 * the record: the table's key is (key, backend_pid)).
 */
const sameSession = (record: string): string =>
  `(a.backend_start IS NULL OR (extract(epoch FROM a.backend_start) * 1000000)::int8 = ${record}.backend_start_us)`;
/** The current database, whose advisory locks are the only ones that can conflict with ours. */
const THIS_DATABASE = '(SELECT oid FROM pg_database WHERE datname = current_database())';

/**
 * The grant statement. Parameters: $1 key, $2 backend_start_us, $3
 * namespace, $4 name, $5 host, $6 pid, $7 owner; for a shared lock also $8
 * classid, $9 objid; for a wait then the lock_timeout in ms (set in the
 * statement itself, before the wait starts: the CTE chain orders it).
 *
 * It returns one row when granted (token, acquired_at_ms, backend_pid and,
 * for shared locks, the names of live holders of the same key under another
 * name) and no row when a try failed. An exclusive grant also deletes the
 * records other sessions left for this key (they cannot be holding it now);
 * rows their owners are deleting at this moment are skipped, not waited for.
 */
export function grantSql(o: Objects, mode: LockMode, wait: boolean): string {
  const shared = mode === 'shared' ? '_shared' : '';
  const ctes: string[] = [];
  let from = '';
  if (wait) {
    ctes.push(`t AS MATERIALIZED (SELECT set_config('lock_timeout', $${mode === 'shared' ? 10 : 8}, false) AS v)`);
    from = ' FROM t';
  }
  // pg_advisory_lock returns void; comparing its text form keeps the call in
  // a column that is used, so the planner cannot drop it.
  const call = wait ? `pg_advisory_lock${shared}($1)::text = ''` : `pg_try_advisory_lock${shared}($1)`;
  ctes.push(`g AS MATERIALIZED (SELECT ${call} AS ok${from})`);
  if (mode === 'exclusive') {
    ctes.push(`stale AS (DELETE FROM ${o.owners} WHERE (key, backend_pid) IN (
  SELECT key, backend_pid FROM ${o.owners}
  WHERE key = $1 AND backend_pid <> pg_backend_pid() AND (SELECT ok FROM g) FOR UPDATE SKIP LOCKED))`);
  }
  const collision =
    mode === 'shared'
      ? `, (SELECT string_agg(DISTINCT x.namespace || ' / ' || x.name, E'\\n') FROM ${o.owners} x
   JOIN pg_locks l ON l.pid = x.backend_pid AND l.locktype = 'advisory' AND l.objsubid = 1 AND l.granted
    AND l.classid = $8::oid AND l.objid = $9::oid AND l.database = ${THIS_DATABASE}
   LEFT JOIN pg_stat_activity a ON a.pid = x.backend_pid
   WHERE x.key = $1 AND x.backend_pid <> pg_backend_pid() AND (x.namespace <> $3 OR x.name <> $4)
    AND ${sameSession('x')}) AS collision`
      : '';
  return `WITH ${ctes.join(',\n')}
INSERT INTO ${o.owners} AS o (key, backend_pid, backend_start_us, namespace, name, mode, host, pid, owner, token, acquired_at)
SELECT $1, pg_backend_pid(), $2, $3, $4, '${mode}', $5, $6, $7, nextval('${o.tokens}'), clock_timestamp() FROM g WHERE g.ok
ON CONFLICT (key, backend_pid) DO UPDATE SET backend_start_us = EXCLUDED.backend_start_us,
  namespace = EXCLUDED.namespace, name = EXCLUDED.name, mode = EXCLUDED.mode, host = EXCLUDED.host,
  pid = EXCLUDED.pid, owner = EXCLUDED.owner, token = EXCLUDED.token, acquired_at = EXCLUDED.acquired_at
RETURNING o.token, (extract(epoch FROM o.acquired_at) * 1000)::float8 AS acquired_at_ms, o.backend_pid${collision}`;
}

/** Releases a held lock and deletes its record. $1 key. One row: released ('t' when it was held). */
export function releaseSql(o: Objects, mode: LockMode): string {
  const shared = mode === 'shared' ? '_shared' : '';
  return `WITH d AS (DELETE FROM ${o.owners} WHERE key = $1 AND backend_pid = pg_backend_pid())
SELECT pg_advisory_unlock${shared}($1) AS released`;
}

/**
 * After a wait ended in a timeout, a cancel or an error: the server may have
 * granted the lock in the same instant (a session lock outlives the failed
 * statement). Looks in pg_locks and releases such a grant. $1 key, $2
 * classid, $3 objid. One row per grant released.
 */
export const RELEASE_RACED_SQL = `SELECT CASE WHEN l.mode = 'ExclusiveLock' THEN pg_advisory_unlock($1)
  ELSE pg_advisory_unlock_shared($1) END AS released
FROM pg_locks l
WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid() AND l.granted
  AND l.classid = $2::oid AND l.objid = $3::oid AND l.objsubid = 1`;

/** The heartbeat: cheap, and names the backend (a transaction pooler would change it). */
export const HEARTBEAT_SQL = 'SELECT pg_backend_pid() AS pid';

/** Cancels the statement a waiting session runs. $1 its backend pid. */
export const CANCEL_SQL = 'SELECT pg_cancel_backend($1) AS sent';

/**
 * Advisory locks of this database (two-word keys, objsubid 1: the form
 * pg_advisory_lock(bigint) takes), with the session holding or waiting and
 * the owner record when it belongs to that very session (same pid, same
 * backend start). $1: classid or NULL for all keys, $2 objid.
 */
export function inspectSql(o: Objects): string {
  return `SELECT ${LOCK_KEY}::text AS key, l.pid, l.mode, l.granted,
  a.application_name, host(a.client_addr) AS client_addr,
  (extract(epoch FROM a.backend_start) * 1000)::float8 AS backend_start_ms,
  (extract(epoch FROM a.query_start) * 1000)::float8 AS query_start_ms,
  (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS now_ms,
  o.namespace, o.name, o.host, o.pid AS client_pid, o.owner, o.token,
  (extract(epoch FROM o.acquired_at) * 1000)::float8 AS acquired_at_ms
FROM pg_locks l
LEFT JOIN pg_stat_activity a ON a.pid = l.pid
LEFT JOIN ${o.owners} o ON l.granted AND o.key = ${LOCK_KEY} AND o.backend_pid = l.pid AND ${sameSession('o')}
WHERE l.locktype = 'advisory' AND l.objsubid = 1 AND l.database = ${THIS_DATABASE}
  AND ($1::oid IS NULL OR (l.classid = $1::oid AND l.objid = $2::oid))
ORDER BY 1, l.granted DESC, a.query_start, l.pid`;
}
