// Opening a lock session: a node-postgres client whose server session is set
// up so the server notices a vanished client quickly (keepalives,
// tcp_user_timeout, client_connection_check_interval), never ends it for
// idling (idle_session_timeout = 0), never cancels a lock wait on a clock of
// its own (statement_timeout = 0), and names its host and pid
// (application_name). Then the checks that make session locks meaningful:
// no pooler in between, a primary (not a read-only standby), a version that
// has the settings.
import { createRequire } from 'node:module';
import os from 'node:os';
import type { Client, ClientConfig } from 'pg';
import { PgLockError } from './errors.js';
import type { PgSettings } from './options.js';

type PgModule = typeof import('pg');
let pgModule: PgModule | undefined;

/** node-postgres, loaded on first use: it is an optional peer dependency of kernel-lock. */
export function loadPg(): PgModule {
  if (pgModule === undefined) {
    try {
      pgModule = createRequire(import.meta.url)('pg') as PgModule;
    } catch (error) {
      throw new PgLockError(
        'ERR_KERNEL_LOCK_PG_MISSING',
        "kernel-lock/pg needs the PostgreSQL client package 'pg' (node-postgres): npm install pg",
        { cause: error },
      );
    }
  }
  return pgModule;
}

/** What the server told us about a new session. */
export interface SessionInfo {
  backendPid: number;
  /** pg_stat_activity.backend_start in microseconds since the epoch (text): with the pid, identifies the session over time. */
  backendStartUs: string;
  serverVersion: number;
}

// application_name is cut by the server at 63 bytes.
function applicationName(): string {
  const host = os.hostname().replace(/[^\x20-\x7e]/g, '?');
  const tail = ` pid ${process.pid}`;
  return `kernel-lock ${host.slice(0, 63 - 'kernel-lock '.length - tail.length)}${tail}`;
}

/** One round trip: session settings, identity, and the facts the checks need. */
const SETUP_SQL = `SELECT pg_backend_pid() AS pid,
  (SELECT (extract(epoch FROM backend_start) * 1000000)::int8 FROM pg_stat_activity
    WHERE pid = pg_backend_pid()) AS backend_start_us,
  current_setting('server_version_num')::int AS version,
  pg_is_in_recovery() AS standby,
  set_config('tcp_keepalives_idle', $1, false) AS s1,
  set_config('tcp_keepalives_interval', $2, false) AS s2,
  set_config('tcp_keepalives_count', $3, false) AS s3,
  set_config('statement_timeout', '0', false) AS s4,
  set_config('idle_in_transaction_session_timeout', '0', false) AS s5,
  CASE WHEN current_setting('server_version_num')::int >= 120000
    THEN set_config('tcp_user_timeout', $4, false) END AS s6,
  CASE WHEN current_setting('server_version_num')::int >= 140000
    THEN set_config('idle_session_timeout', '0', false) || set_config('client_connection_check_interval', $5, false) END AS s7`;

interface SetupRow {
  pid: string;
  backend_start_us: string | null;
  version: string;
  standby: string;
}

/** Every value as the server's text: 64-bit numbers must not become JavaScript numbers, and the application's global type parsers must not change our rows. */
const TEXT_ONLY = { getTypeParser: () => (value: string) => value };

function where(config: ClientConfig): string {
  const c = config as ClientConfig & { connectionString?: string };
  if (c.connectionString !== undefined) {
    try {
      const url = new URL(c.connectionString);
      return `${decodeURIComponent(url.hostname) || 'localhost'}${url.port ? `:${url.port}` : ''}`;
    } catch {
      return 'the server';
    }
  }
  return `${c.host ?? process.env.PGHOST ?? 'localhost'}${c.port === undefined ? '' : `:${c.port}`}`;
}

/** Connects and sets up one lock session; rejects (and closes the client) if the server is unfit for session locks. */
export async function openSession(
  connection: Record<string, unknown>,
  settings: PgSettings,
  opening: Set<Client>,
): Promise<{ client: Client; info: SessionInfo }> {
  const pg = loadPg();
  const config: ClientConfig = {
    connectionTimeoutMillis: 30_000,
    ...(connection as ClientConfig),
    application_name: applicationName(),
    // Client-side keepalives: a waiting session cannot heartbeat, so this is
    // what lets the client notice a server that vanished during a long wait.
    keepAlive: true,
    keepAliveInitialDelayMillis: settings.keepalivesIdle * 1000,
    types: TEXT_ONLY as unknown as ClientConfig['types'],
  };
  const client = new pg.Client(config);
  // An 'error' event without a listener would crash the process; the
  // session installs its own handler once connected.
  const early = (): void => {};
  client.on('error', early);
  // Listed while connecting, so that close() can end a connection attempt.
  opening.add(client);
  try {
    await client.connect();
  } catch (error) {
    opening.delete(client);
    throw new PgLockError(
      'ERR_KERNEL_LOCK_PG_CONNECTION',
      `kernel-lock/pg: cannot connect to PostgreSQL at ${where(config)}: ${(error as Error).message}`,
      { cause: error },
    );
  }
  try {
    const result = await client.query<SetupRow>(SETUP_SQL, [
      String(settings.keepalivesIdle),
      String(settings.keepalivesInterval),
      String(settings.keepalivesCount),
      String(settings.deadPeerMs),
      String(settings.checkIntervalMs),
    ]);
    const row = result.rows[0]!;
    const info: SessionInfo = {
      backendPid: Number(row.pid),
      backendStartUs: row.backend_start_us ?? '0',
      serverVersion: Number(row.version),
    };
    checkServer(client, info, row.standby === 't', settings);
    client.off('error', early);
    return { client, info };
  } catch (error) {
    client.end().catch(() => {});
    throw error;
  } finally {
    opening.delete(client);
  }
}

function checkServer(client: Client, info: SessionInfo, standby: boolean, settings: PgSettings): void {
  if (info.serverVersion < 120000) {
    throw new PgLockError(
      'ERR_KERNEL_LOCK_PG_VERSION',
      `kernel-lock/pg: PostgreSQL ${Math.floor(info.serverVersion / 10000)} is too old: 12 or newer is needed (tcp_user_timeout bounds how long a vanished client keeps its locks)`,
    );
  }
  if (standby) {
    throw new PgLockError(
      'ERR_KERNEL_LOCK_PG_STANDBY',
      'kernel-lock/pg: connected to a standby (read-only replica): its advisory locks exclude nobody on the primary; connect to the primary (for example with target_session_attrs=read-write)',
    );
  }
  // The backend key data the client got at startup names the server process
  // it talks to. A pooler (PgBouncer, pgcat, Odyssey, RDS Proxy) answers with
  // its own key, so a mismatch means one is in between; in transaction mode
  // it would hand this server session, and the locks it holds, to other
  // clients between our statements.
  const announced = (client as Client & { processID?: number | null }).processID;
  if (announced !== info.backendPid && !settings.allowSessionPooler) {
    throw new PgLockError(
      'ERR_KERNEL_LOCK_PG_POOLER',
      `kernel-lock/pg: a connection pooler sits between this process and PostgreSQL (the startup message named backend ${announced}, the session runs in backend ${info.backendPid}). Session locks need a session of their own: in transaction mode the pooler gives this session, and its locks, to other clients. Connect to PostgreSQL directly; with a pooler in session mode, pass { allowSessionPooler: true }`,
    );
  }
}

/**
 * Ends a connection attempt at once: destroys the socket (client.end() would
 * wait for a server that may never answer), so connect() rejects now.
 */
export function abandon(client: Client): void {
  (client as unknown as { connection?: { stream?: { destroy(): void } } }).connection?.stream?.destroy();
}
