// Markers left by the legacy session lock ({pid, createdAt, starttime}, made
// with O_EXCL and no kernel lock). During a rolling upgrade an old-version
// process may still be using one; it holds no kernel lock, so the only sign
// of it is its marker. We honour such a marker only when the process it
// names is provably the one that wrote it: alive in OUR pid namespace (a
// legacy marker has no namespace field, so that is the only place its pid
// means anything) with the same start time, and younger than the age at
// which legacy processes themselves give up on it. Everything else (garbage,
// `{}`, a dead or recycled pid, and every record written by kernel-lock)
// never blocks: for kernel-lock records the kernel lock is the only truth.

import type { OwnerRecord } from '../lock/owner-record.js';
import { readStartTime } from '../proc/identity.js';

/** What acquisition does with legacy-format markers. */
export type LegacyMarkerPolicy = 'respect-live' | 'ignore';

export const LEGACY_MARKER_POLICIES: readonly LegacyMarkerPolicy[] = ['respect-live', 'ignore'];

/** A live old-version process that, by its marker, holds the session. */
export interface LiveLegacyHolder {
  kind: 'legacy-marker';
  pid: number;
  starttime: number;
  createdAt: string | null;
  ageMs: number;
}

/** True for a record in the legacy format (written by an old version, not by kernel-lock). */
export function isLegacyRecord(record: OwnerRecord | null): record is OwnerRecord {
  return record !== null && record.format === undefined;
}

/** Age of a record from its createdAt, or from the file's mtime when createdAt is unusable (as legacy did). */
export function recordAgeMs(record: OwnerRecord | null, mtimeMs: number | null, nowMs: number): number | null {
  const created = record?.createdAt === undefined ? Number.NaN : Date.parse(record.createdAt);
  if (Number.isFinite(created)) return Math.max(0, nowMs - created);
  return mtimeMs === null ? null : Math.max(0, nowMs - mtimeMs);
}

/**
 * The live legacy holder named by `record`, or null when the record does not
 * prove one (see the module comment for the rule).
 */
export function liveLegacyHolder(
  record: OwnerRecord | null,
  mtimeMs: number | null,
  staleMs: number,
  nowMs = Date.now(),
): LiveLegacyHolder | null {
  if (!isLegacyRecord(record)) return null;
  const { pid, starttime } = record;
  if (pid === undefined || pid <= 0 || starttime === undefined) return null;
  if (readStartTime(pid) !== starttime) return null; // dead, or the pid now names another process
  const ageMs = recordAgeMs(record, mtimeMs, nowMs);
  if (ageMs === null || ageMs > staleMs) return null;
  return { kind: 'legacy-marker', pid, starttime, createdAt: record.createdAt ?? null, ageMs };
}
