// Markers of stock fs-safe. During a rolling upgrade an old-version process
// may hold a target by an O_EXCL sidecar alone: it takes no kernel lock, so
// its marker is the only sign of it. A lock file whose content is a JSON
// object not written by kernel-lock is such a marker, and it is judged
// exactly as stock fs-safe judges it: by the caller's own stale policy
// (shouldReclaim, staleRecovery, shouldRemoveStaleLock). A kernel-lock record
// is never judged (the kernel says whether it is held), except a retained
// one by a retainOnExit acquisition (see retention.ts); neither is an empty
// or garbage file (no stock holder leaves one for longer than the instant
// between its create and its write).
import { parseRecord, RECORD_FORMAT } from '../../lock/owner-record.js';
import { readLockFileHead } from './lock-file-head.js';
import { defaultParsePayload, MAX_PAYLOAD_BYTES } from './payload.js';
import { readRetainedRecord } from './retention.js';
import type { FileLockReclaimParams, FileLockStaleRecovery, FileLockStaleSnapshot } from './types.js';

/**
 * A claim on the lock file that no kernel lock backs, judged by the caller's
 * stale policy: a stock fs-safe marker, or a record retained (retainOnExit)
 * by a holder that never released it.
 */
export interface Claim {
  origin: 'stock-marker' | 'retained';
  /** What parsePayload is shown: the marker's text, or the retained record's payload. */
  raw: string;
  mtimeMs: number;
  /** The pid the claim records, when it records one (for messages only). */
  pid: number | null;
}

/** Reads the lock file and returns it when it is a stock marker; null otherwise (missing, ours, empty, garbage). */
export function readLegacyMarker(lockPath: string): Claim | null {
  const head = readLockFileHead(lockPath, MAX_PAYLOAD_BYTES + 64);
  if (head === null) return null;
  const raw = head.bytes.toString('utf8');
  const record = parseRecord(raw);
  if (record === null || record.format === RECORD_FORMAT) return null;
  return { origin: 'stock-marker', raw, mtimeMs: head.mtimeMs, pid: record.pid ?? null };
}

/**
 * The claim an acquisition must judge before taking the lock: a stock marker
 * (unless legacy markers are ignored), or, for a retainOnExit acquisition
 * holding the retention guard, a retained record.
 */
export function readClaim(lockPath: string, judge: { stockMarkers: boolean; retained: boolean }): Claim | null {
  if (judge.retained) {
    const retained = readRetainedRecord(lockPath);
    if (retained !== null) return { origin: 'retained', ...retained };
  }
  return judge.stockMarkers ? readLegacyMarker(lockPath) : null;
}

/** fs-safe's default stale policy: older than staleMs by its createdAt, else by the file's mtime. */
export function defaultShouldReclaim(params: FileLockReclaimParams, mtimeMs: number): boolean {
  const payload = params.payload as { createdAt?: unknown } | null;
  const createdAt = typeof payload?.createdAt === 'string' ? Date.parse(payload.createdAt) : Number.NaN;
  if (Number.isFinite(createdAt)) return params.nowMs - createdAt > params.staleMs;
  return params.nowMs - mtimeMs > params.staleMs;
}

/** The caller's stale policy, as the acquisition gives it. */
export interface StalePolicy {
  lockPath: string;
  normalizedTargetPath: string;
  staleMs: number;
  staleRecovery: FileLockStaleRecovery;
  parsePayload?: ((raw: string) => unknown) | undefined;
  shouldReclaim?: ((params: FileLockReclaimParams) => unknown) | undefined;
  shouldRemoveStaleLock?: ((snapshot: FileLockStaleSnapshot) => unknown) | undefined;
}

/** What to do about a claim: wait for its owner, take the lock over it, or fail closed. */
export type MarkerVerdict = 'live' | 'replace' | 'stale';

function steps(marker: Claim, policy: StalePolicy) {
  const payload = policy.parsePayload ? policy.parsePayload(marker.raw) : defaultParsePayload(marker.raw);
  const params: FileLockReclaimParams = {
    lockPath: policy.lockPath,
    normalizedTargetPath: policy.normalizedTargetPath,
    payload: payload ?? null,
    staleMs: policy.staleMs,
    nowMs: Date.now(),
    heldByThisProcess: false,
  };
  const snapshot: FileLockStaleSnapshot = {
    lockPath: policy.lockPath,
    normalizedTargetPath: policy.normalizedTargetPath,
    raw: marker.raw,
    payload: payload ?? null,
  };
  return { params, snapshot };
}

/** Judges a marker with the caller's asynchronous policy (stock fs-safe's decision, step for step). */
export async function judgeMarker(marker: Claim, policy: StalePolicy): Promise<MarkerVerdict> {
  const { params, snapshot } = steps(marker, policy);
  const reclaim = policy.shouldReclaim
    ? await policy.shouldReclaim(params)
    : defaultShouldReclaim(params, marker.mtimeMs);
  if (!reclaim) return 'live';
  if (policy.staleRecovery === 'remove-if-unchanged' && policy.shouldRemoveStaleLock) {
    if (await policy.shouldRemoveStaleLock(snapshot)) return 'replace';
  }
  return 'stale';
}

function syncResult(value: unknown, name: string): boolean {
  if (typeof (value as { then?: unknown } | null)?.then === 'function') {
    throw new TypeError(`acquireFileLockSync: ${name} must answer synchronously, not with a promise`);
  }
  return Boolean(value);
}

/** The same with synchronous callbacks; a promise answer is a TypeError, never approval. */
export function judgeMarkerSync(marker: Claim, policy: StalePolicy): MarkerVerdict {
  const { params, snapshot } = steps(marker, policy);
  const reclaim = policy.shouldReclaim
    ? syncResult(policy.shouldReclaim(params), 'shouldReclaim')
    : defaultShouldReclaim(params, marker.mtimeMs);
  if (!reclaim) return 'live';
  if (policy.staleRecovery === 'remove-if-unchanged' && policy.shouldRemoveStaleLock) {
    if (syncResult(policy.shouldRemoveStaleLock(snapshot), 'shouldRemoveStaleLock')) return 'replace';
  }
  return 'stale';
}
