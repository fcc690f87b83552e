// What inspecting a PostgreSQL advisory lock tells: the server's word on who
// holds and who waits (pg_locks joined with pg_stat_activity), plus the owner
// record of each holder, trusted only when it belongs to that very session.
import type { LockMode } from '../lock/options.js';

/** The owner record a kernel-lock holder keeps in the owner table. */
export interface PgOwnerRecord {
  namespace: string;
  name: string;
  /** Host name of the holding process. */
  host: string;
  /** Process id of the holding process, on its host. */
  pid: number;
  owner: string | null;
  token: bigint;
  /** When the server granted the lock (server clock, ms since the epoch). */
  acquiredAtMs: number;
}

/** One server session holding or waiting for the lock. */
export interface PgLockSession {
  /** The server process of the session (pg_stat_activity.pid). */
  backendPid: number;
  mode: LockMode;
  granted: boolean;
  applicationName: string | null;
  /** Client address; null for a Unix socket, or when the role may not see it. */
  clientAddress: string | null;
  backendStartMs: number | null;
  /** When the session's current or last statement started: for a waiter, when its wait began. */
  queryStartMs: number | null;
  /** True when the session belongs to the PgLocks that inspected. */
  self: boolean;
  /** The owner record, only when written by this very session (same backend pid and start); null otherwise. */
  record: PgOwnerRecord | null;
}

/** The state of one advisory lock key. */
export interface PgLockInspection {
  key: bigint;
  /** The name asked for, or (scan) the name in a holder's record; null when nobody says. */
  name: string | null;
  namespace: string | null;
  /** 'held-by-self' when every holder is a session of the inspecting PgLocks. */
  state: 'free' | 'held' | 'held-by-self';
  held: boolean;
  holders: PgLockSession[];
  waiters: PgLockSession[];
  /** How long the longest current holder has held it (from its record, server clock); null when unknown. */
  heldForMs: number | null;
  /** Names ("namespace / name") in holders' records that differ from `name`: another name with the same key. */
  collisions: string[];
}
