// cleanStaleLockFiles(): the runtime's startup sweep of `*.jsonl.lock`, made
// safe to run while other processes are busy. A file is stale only when no
// kernel lock is held on it, however old or odd its record; it is removed
// with the release protocol: take its lock without waiting, unlink the file
// while holding it, then close. A held lock is never touched, so a writer is
// never robbed, in this pid namespace or any other.
import { statSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { sweepFile } from '../inspect/sweep.js';
import { type OwnerRecord, readRecordSync } from '../lock/owner-record.js';
import { processIdentity, readStartTime } from '../proc/identity.js';
import { DEFAULT_STALE_MS, resolvePositiveMs } from './durations.js';
import { LEGACY_MARKER_POLICIES, type LegacyMarkerPolicy, liveLegacyHolder, recordAgeMs } from './legacy-markers.js';

/** One lock file as cleanStaleLockFiles() found it. */
export interface SessionLockInspection {
  lockPath: string;
  /** The pid its record names, or null. */
  pid: number | null;
  /** Whether that pid is alive; for a record from another pid namespace (never probed), whether the lock is held. */
  pidAlive: boolean;
  createdAt: string | null;
  ageMs: number | null;
  /** True only when no kernel lock is held on the file (and no live legacy writer owns it). */
  stale: boolean;
  /** Why it is stale (empty when it is not). */
  staleReasons: string[];
  removed: boolean;
  /** Whether a kernel lock was held on it. */
  held: boolean;
}

/** Options of cleanStaleLockFiles(). */
export interface CleanStaleLockFilesOptions {
  sessionsDir: string;
  /** Age reported as "too-old" (default 30 min). Informative: age never makes a held lock stale. */
  staleMs?: number;
  /** Remove stale files (default true); false only reports. */
  removeStale?: boolean;
  nowMs?: number;
  log?: { warn?: (message: string) => void; info?: (message: string) => void };
  /** Keep files whose legacy marker names a live old-version writer (default 'respect-live'). */
  legacyMarkers?: LegacyMarkerPolicy;
}

const SUFFIX = '.jsonl.lock';

/** True when the record's pid can be looked up here (a legacy marker, or a record from our namespace and boot). */
function pidMeansSomethingHere(record: OwnerRecord): boolean {
  if (record.format === undefined) return true;
  const self = processIdentity();
  return (
    record.pidNamespace !== undefined &&
    record.pidNamespace === self.pidNamespace &&
    (record.bootId === undefined || record.bootId === self.bootId)
  );
}

function processView(record: OwnerRecord | null, held: boolean): { alive: boolean; reason: string | null } {
  if (record === null || record.pid === undefined || record.pid <= 0) return { alive: false, reason: 'missing-pid' };
  if (!pidMeansSomethingHere(record)) return { alive: held, reason: 'other-namespace' };
  const starttime = readStartTime(record.pid);
  if (starttime === null) return { alive: false, reason: 'dead-pid' };
  if (record.starttime !== undefined && record.starttime !== starttime) return { alive: true, reason: 'recycled-pid' };
  return { alive: true, reason: null };
}

function mtimeOf(file: string): number | null {
  try {
    return statSync(file).mtimeMs;
  } catch {
    return null;
  }
}

/**
 * Probes the kernel lock without waiting, through the sweep protocol: flock
 * and fcntl holders alike count, nothing is written into the file, and with
 * `remove` a free file is unlinked while its lock is held. Returns whether
 * the lock was held and whether the file was removed.
 */
function probe(lockPath: string, remove: boolean): { held: boolean; removed: boolean; foreign: boolean } {
  const outcome = sweepFile(lockPath, { dryRun: !remove });
  switch (outcome.action) {
    case 'removed':
      return { held: false, removed: true, foreign: false };
    case 'would-remove':
    case 'missing':
      return { held: false, removed: false, foreign: false };
    default:
      if (outcome.reason === 'held' || outcome.reason === 'held-by-self') {
        return { held: true, removed: false, foreign: false };
      }
      // Neither a record nor a marker: somebody's data, never removed.
      if (outcome.reason === 'foreign-content') return { held: false, removed: false, foreign: true };
      throw new Error(outcome.detail);
  }
}

/**
 * Inspects every `*.jsonl.lock` in `sessionsDir` and removes the stale ones
 * (those no kernel lock is held on). Returns every file seen, and those removed.
 */
export async function cleanStaleLockFiles(
  params: CleanStaleLockFilesOptions,
): Promise<{ locks: SessionLockInspection[]; cleaned: SessionLockInspection[] }> {
  if (typeof params !== 'object' || params === null || typeof params.sessionsDir !== 'string') {
    throw new TypeError('kernel-lock/session: cleanStaleLockFiles needs { sessionsDir: string, ... }');
  }
  const policy = params.legacyMarkers ?? 'respect-live';
  if (!LEGACY_MARKER_POLICIES.includes(policy)) {
    throw new TypeError(
      `kernel-lock/session: legacyMarkers must be 'respect-live' or 'ignore', got ${JSON.stringify(policy)}`,
    );
  }
  const sessionsDir = path.resolve(params.sessionsDir);
  const staleMs = resolvePositiveMs(params.staleMs, DEFAULT_STALE_MS);
  const removeStale = params.removeStale !== false;
  const nowMs = params.nowMs ?? Date.now();

  let names: string[];
  try {
    names = await readdir(sessionsDir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { locks: [], cleaned: [] };
    throw error;
  }
  const locks: SessionLockInspection[] = [];
  const cleaned: SessionLockInspection[] = [];
  for (const name of names.filter((n) => n.endsWith(SUFFIX)).sort()) {
    const lockPath = path.join(sessionsDir, name);
    const record = readRecordSync(lockPath);
    const mtimeMs = mtimeOf(lockPath);
    const ageMs = recordAgeMs(record, mtimeMs, nowMs);
    const base = {
      lockPath,
      pid: record?.pid !== undefined && record.pid > 0 ? record.pid : null,
      createdAt: record?.createdAt ?? null,
      ageMs,
    };
    // A live old-version writer holds the session by its marker alone;
    // taking the kernel lock would overwrite that marker.
    if (policy === 'respect-live' && liveLegacyHolder(record, mtimeMs, staleMs, nowMs) !== null) {
      locks.push({ ...base, pidAlive: true, stale: false, staleReasons: [], removed: false, held: false });
      params.log?.info?.(`kept session lock of a live old-version writer: ${lockPath} (pid ${base.pid})`);
      continue;
    }
    // Gone since the listing (released by its holder): nothing to report.
    if (mtimeMs === null) continue;
    let result: { held: boolean; removed: boolean; foreign: boolean };
    try {
      result = probe(lockPath, removeStale);
    } catch (error) {
      // Not a lockable regular file (a link, a directory, no permission): report, never delete.
      params.log?.warn?.(`cannot inspect session lock ${lockPath}: ${(error as Error).message}`);
      locks.push({ ...base, pidAlive: false, stale: false, staleReasons: [], removed: false, held: false });
      continue;
    }
    const view = processView(record, result.held);
    const staleReasons: string[] = [];
    if (!result.held) {
      staleReasons.push('no-kernel-lock');
      if (view.reason !== null) staleReasons.push(view.reason);
      if (ageMs === null) staleReasons.push('invalid-createdAt');
      else if (ageMs > staleMs) staleReasons.push('too-old');
    }
    const info: SessionLockInspection = {
      ...base,
      pidAlive: view.alive,
      stale: !result.held,
      staleReasons,
      removed: result.removed,
      held: result.held,
    };
    locks.push(info);
    if (result.foreign) {
      params.log?.warn?.(
        `kept session lock file holding data that is not a lock record (check it, then remove it by hand): ${lockPath}`,
      );
    }
    if (info.removed) {
      cleaned.push(info);
      params.log?.warn?.(`removed stale session lock: ${lockPath} (${staleReasons.join(', ')})`);
    }
  }
  return { locks, cleaned };
}
