// retainOnExit on kernel locks. In fs-safe a retained sidecar outlives a
// holder that never released it (killed, or exited without releasing), and
// its successors judge it by their own stale policy: "deliberately retained
// ownership records whose liveness is governed by the caller's own stale
// policy", such as the runtime's package-lifecycle lock, which refuses to
// start while a lifecycle writer of a dead owner may still be running. A
// kernel lock cannot outlive its holder, so the retained part is the owner
// record: a retainOnExit holder marks its record, a clean release clears the
// mark (and removes the file), and a retainOnExit successor that finds a
// marked record judges it as fs-safe would have judged the sidecar.
//
// The successor must judge the record before it overwrites it, and the core
// writes its record the moment a lock is granted. So every retainOnExit
// acquisition first takes a guard lock (`<lockPath>.retain`) and keeps it
// for as long as it holds the lock: a marked record is only ever written by
// a holder of the guard, so whoever holds the guard and finds one knows that
// its writer never released, and nobody can write another one before its
// own kernel lock on `lockPath` is granted. Acquisitions without
// retainOnExit take no guard and never judge a record (the kernel says
// whether the lock is held); their record simply replaces a retained one.
import { fstatSync, ftruncateSync, readSync } from 'node:fs';
import type { LockHandle } from '../../lock/handle.js';
import { MAX_RECORD_BYTES, parseRecord, RECORD_FORMAT } from '../../lock/owner-record.js';
import { readLockFileHead } from './lock-file-head.js';

/** Starts the owner label of a retained record; the caller's payload JSON follows. */
export const RETAINED_LABEL_PREFIX = 'retainOnExit ';

/** The guard lock of retainOnExit acquisitions of `lockPath`. */
export function retentionGuardPath(lockPath: string): string {
  return `${lockPath}.retain`;
}

/** The owner label of a retained record: the mark, then the payload label (which may be empty). */
export function retainedLabel(payloadLabel: string | undefined): string {
  return `${RETAINED_LABEL_PREFIX}${payloadLabel ?? ''}`;
}

/** The payload text in an owner label, marked or not; null when the label holds no payload JSON. */
export function payloadTextOf(owner: string | undefined): string | null {
  if (owner === undefined) return null;
  const text = owner.startsWith(RETAINED_LABEL_PREFIX) ? owner.slice(RETAINED_LABEL_PREFIX.length) : owner;
  return text.startsWith('{') ? text : null;
}

/** True when an owner label marks a retained record. */
export function isRetainedLabel(owner: string | undefined): boolean {
  return owner?.startsWith(RETAINED_LABEL_PREFIX) ?? false;
}

/**
 * A clean release clears the mark: while the lock is still held, the record
 * is truncated away if it is still the one this acquisition wrote (our pid,
 * our marked label), so a file left behind (an unlink that failed, a file
 * kept for a waiter of this process) claims nothing. Best effort: if it
 * fails, the core's release still removes the file, and a record that stays
 * makes the next retainOnExit acquisition fail closed, never open.
 */
export function clearRetainedMark(handle: LockHandle, label: string): void {
  if (handle.released || handle.readOnly) return;
  try {
    const size = fstatSync(handle.fd).size;
    if (size === 0 || size > MAX_RECORD_BYTES) return;
    const buffer = Buffer.alloc(size);
    const length = readSync(handle.fd, buffer, 0, size, 0);
    const record = parseRecord(buffer.subarray(0, length));
    if (record?.format !== RECORD_FORMAT || record.pid !== process.pid || record.owner !== label) return;
    ftruncateSync(handle.fd, 0);
  } catch {
    // See above: the release goes on, and what stays fails closed.
  }
}

/** A retained record found at the lock path: its holder is gone, its payload is the claim. */
export interface RetainedRecord {
  /** The payload text its holder wrote (what parsePayload is shown). */
  raw: string;
  mtimeMs: number;
  pid: number | null;
}

/** Reads the lock file and returns its record when it carries the retained mark; null otherwise. */
export function readRetainedRecord(lockPath: string): RetainedRecord | null {
  const head = readLockFileHead(lockPath, MAX_RECORD_BYTES, MAX_RECORD_BYTES);
  if (head === null) return null;
  const record = parseRecord(head.bytes);
  if (record?.format !== RECORD_FORMAT || !isRetainedLabel(record.owner)) return null;
  const raw = record.owner!.slice(RETAINED_LABEL_PREFIX.length);
  return { raw, mtimeMs: head.mtimeMs, pid: record.pid ?? null };
}
