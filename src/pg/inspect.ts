// inspect() and scan() for the PostgreSQL engine: the server's pg_locks is
// the truth (as /proc/locks is for the kernel engine); the owner table only
// adds names, hosts and tokens, and only for the session that wrote them.
import type { LockMode } from '../lock/options.js';
import type { PgLockInspection, PgLockSession, PgOwnerRecord } from './inspect-types.js';
import { keyParts } from './keys.js';
import type { LockSession, Row } from './session.js';
import { inspectSql, type Objects } from './sql.js';

/** Who asks: names the lock (inspect) or not (scan), and knows its own sessions. */
export interface InspectTarget {
  key: bigint | null;
  name: string | null;
  namespace: string | null;
  selfPids: ReadonlySet<number>;
}

function num(value: string | null | undefined): number | null {
  if (value === null || value === undefined) return null;
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

function recordOf(row: Row): PgOwnerRecord | null {
  if (row.name === null || row.name === undefined || row.token === null || row.token === undefined) return null;
  return {
    namespace: row.namespace ?? '',
    name: row.name,
    host: row.host ?? '',
    pid: num(row.client_pid) ?? 0,
    owner: row.owner ?? null,
    token: BigInt(row.token),
    acquiredAtMs: num(row.acquired_at_ms) ?? 0,
  };
}

function sessionOf(row: Row, selfPids: ReadonlySet<number>): PgLockSession {
  const backendPid = num(row.pid) ?? 0;
  const mode: LockMode = row.mode === 'ShareLock' ? 'shared' : 'exclusive';
  return {
    backendPid,
    mode,
    granted: row.granted === 't',
    applicationName: row.application_name ?? null,
    clientAddress: row.client_addr ?? null,
    backendStartMs: num(row.backend_start_ms),
    queryStartMs: num(row.query_start_ms),
    self: selfPids.has(backendPid),
    record: recordOf(row),
  };
}

function build(key: bigint, rows: Row[], target: InspectTarget): PgLockInspection {
  const sessions = rows.map((row) => sessionOf(row, target.selfPids));
  const holders = sessions.filter((s) => s.granted);
  const waiters = sessions.filter((s) => !s.granted);
  const records = holders.map((h) => h.record).filter((r): r is PgOwnerRecord => r !== null);
  const first = records[0];
  const name = target.name ?? first?.name ?? null;
  const namespace = target.namespace ?? first?.namespace ?? null;
  const collisions = [
    ...new Set(
      records.filter((r) => r.name !== name || r.namespace !== namespace).map((r) => `${r.namespace} / ${r.name}`),
    ),
  ];
  const nowMs = num(rows[0]?.now_ms);
  const oldest = records.length === 0 ? null : Math.min(...records.map((r) => r.acquiredAtMs));
  const held = holders.length > 0;
  return {
    key,
    name,
    namespace,
    state: !held ? 'free' : holders.every((h) => h.self) ? 'held-by-self' : 'held',
    held,
    holders,
    waiters,
    heldForMs: oldest === null || nowMs === null ? null : Math.max(0, nowMs - oldest),
    collisions,
  };
}

/** Inspects one key (target.key) or every advisory lock of the database (target.key null). */
export async function inspectKeys(
  session: LockSession,
  objects: Objects,
  target: InspectTarget,
): Promise<PgLockInspection[]> {
  const parts = target.key === null ? null : keyParts(target.key);
  const rows = await session.query(inspectSql(objects), [
    parts === null ? null : String(parts.classid),
    parts === null ? null : String(parts.objid),
  ]);
  if (target.key !== null) return [build(target.key, rows, target)];
  const byKey = new Map<string, Row[]>();
  for (const row of rows) {
    const key = row.key ?? '0';
    let list = byKey.get(key);
    if (list === undefined) {
      list = [];
      byKey.set(key, list);
    }
    list.push(row);
  }
  return [...byKey].map(([key, list]) => build(BigInt(key), list, target));
}

function seconds(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`;
}

/** One holder in words. */
export function describeSession(s: PgLockSession): string {
  const where = s.clientAddress === null ? '' : ` at ${s.clientAddress}`;
  if (s.record !== null) {
    const owner = s.record.owner === null ? '' : ` (owner ${JSON.stringify(s.record.owner)})`;
    return `host ${s.record.host} pid ${s.record.pid}${owner}, backend ${s.backendPid}${where}, token ${s.record.token}`;
  }
  const app = s.applicationName ? `application ${JSON.stringify(s.applicationName)}` : 'no application name';
  return `backend ${s.backendPid} (${app}${where}), which keeps no kernel-lock record for it`;
}

/** The inspection in words, for timeout messages: who holds it, for how long, and any key collision. */
export function describePgInspection(i: PgLockInspection): string {
  if (!i.held) return 'free now (released as the wait ended)';
  const self = i.holders.every((h) => h.self) ? ' (this process: another of its sessions)' : '';
  const first = i.holders[0]!;
  const more = i.holders.length > 1 ? ` and ${i.holders.length - 1} more` : '';
  const since = i.heldForMs === null ? '' : `, for ${seconds(i.heldForMs)}`;
  const collision =
    i.collisions.length > 0
      ? `; KEY COLLISION: ${i.name === null ? 'this key' : JSON.stringify(i.name)} shares its key with ${i.collisions.map((c) => JSON.stringify(c)).join(', ')} (use another namespace)`
      : '';
  return `held by ${describeSession(first)}${more}${self}${since}${collision}`;
}
