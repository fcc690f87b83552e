// Who holds a session lock when a wait times out: the facts a timeout error
// carries (pid, command, owner, age) and the words after the runtime's
// message. The pid comes from the kernel (through the core's timeout error,
// read defensively: only a pid is taken from it), the rest from /proc and
// from the holder's owner record, stamped when the lock was granted.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { OwnerRecord } from '../lock/owner-record.js';
import type { SessionLockHolder } from './error.js';
import type { LiveLegacyHolder } from './legacy-markers.js';

type Loose = Record<string, unknown> | null | undefined;

const positivePid = (value: unknown): number | null =>
  typeof value === 'number' && Number.isSafeInteger(value) && value > 0 ? value : null;

const asObject = (value: unknown): Loose => (typeof value === 'object' && value !== null ? (value as Loose) : null);

/** The live holder's pid in the core error's `holder`, whichever shape it has (an inspection or a snapshot). */
export function kernelHolderPid(holder: unknown): number | null {
  const view = asObject(holder);
  if (!view) return null;
  const holders = Array.isArray(view.holders) ? view.holders.map(asObject) : [];
  const main = holders.find((h) => h?.mode === 'exclusive') ?? holders[0];
  if (main) {
    if (main.alive !== false && positivePid(main.pid) !== null) return positivePid(main.pid);
    const descriptors = Array.isArray(main.descriptors) ? main.descriptors.map(asObject) : [];
    const live = descriptors.find((d) => d?.alive === true && positivePid(d.pid) !== null);
    if (live) return positivePid(live.pid);
  }
  return positivePid(view.pid);
}

/** The pid of a lease's current holder in an inspection of the lease file (the process behind its liveness byte), or null. */
export function leaseHolderPid(inspection: unknown): number | null {
  const lease = asObject(asObject(inspection)?.lease);
  const current = asObject(lease?.current);
  return positivePid(current?.pid);
}

/** `node /app/openclaw.mjs agent …`: the program by its base name, then its arguments. */
function commandLine(argv: readonly string[]): string | null {
  if (argv.length === 0) return null;
  return [path.basename(argv[0]!), ...argv.slice(1)].join(' ');
}

function commandOf(pid: number | null, record: OwnerRecord | null): string | null {
  // A kernel-lock record carries the holder's argv as it was at grant time;
  // /proc/<pid>/cmdline shows what the process made of it since (Node's
  // process.title overwrites it: the runtime calls itself "openclaw-agent").
  if (record?.format !== undefined && record.argv !== undefined && record.argv.length > 0) {
    return commandLine(record.argv);
  }
  if (pid === null) return null;
  try {
    return commandLine(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean));
  } catch {
    return null; // gone, or not ours to read
  }
}

function cut(text: string, max: number): string {
  const flat = text.replace(/[\u0000-\u001f\u007f]/g, ' ');
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

/** `850ms`, `12s`, `4m12s`, `2h05m`. */
export function formatAge(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** The holder of a kernel lock: pid from the kernel, the rest from /proc and its record. */
export function kernelHolder(coreHolder: unknown, record: OwnerRecord | null, nowMs = Date.now()): SessionLockHolder {
  const pid = kernelHolderPid(coreHolder) ?? (record?.format === undefined ? null : positivePid(record.pid));
  const created = record?.createdAt === undefined ? Number.NaN : Date.parse(record.createdAt);
  return {
    pid,
    command: commandOf(pid, record),
    owner: record?.owner ?? null,
    heldForMs: Number.isFinite(created) ? Math.max(0, nowMs - created) : null,
    kind: 'kernel-lock',
  };
}

/** `held by pid 4687 (alive, "node openclaw agent …", owner "…", held 4m12s)`. */
export function describeHolder(holder: SessionLockHolder): string {
  const parts = ['alive'];
  if (holder.command !== null) parts.push(JSON.stringify(cut(holder.command, 100)));
  if (holder.owner !== null) parts.push(`owner ${JSON.stringify(cut(holder.owner, 80))}`);
  if (holder.heldForMs !== null) parts.push(`held ${formatAge(holder.heldForMs)}`);
  const who = holder.pid === null ? 'a process in a pid namespace this one cannot see' : `pid ${holder.pid}`;
  return `held by ${who} (${parts.join(', ')})`;
}

/** The holder named by a live legacy marker. */
export function legacyHolder(legacy: LiveLegacyHolder): SessionLockHolder {
  return {
    pid: legacy.pid,
    command: commandOf(legacy.pid, null),
    owner: null,
    heldForMs: legacy.ageMs,
    kind: 'legacy-marker',
  };
}

/** Holder text for a timeout caused by a live legacy marker. */
export function describeLegacyHolder(holder: SessionLockHolder): string {
  return (
    `${describeHolder(holder).replace('held by', 'held by an old-version process through its legacy marker:')}. ` +
    'It takes no kernel lock and cannot wake waiters, so this acquisition polled its marker; finish the upgrade of ' +
    "that process, or set legacyMarkers: 'ignore' once no old version writes this session"
  );
}
