// The session's lock file, `<session>.jsonl.lock`, kept for everyone who
// reads it rather than the lease: old-version processes (the runtime's
// O_EXCL marker protocol, during a rolling upgrade), `kernel-lock status`
// and `sweep`, the runtime's cleanStaleLockFiles. The current lease holder
// keeps a kernel lock (flock) on it with its owner record inside, so it
// reads as held by that holder, and removes it on release, as the runtime
// did, so old-version processes get in at once.
//
// Two rules keep it consistent with the lease (docs/MIGRATION.md):
// - Only the current holder touches the path, under the lease's fence: a
//   superseded holder's release never removes its successor's marker.
// - A successor that superseded a live holder cannot wait for that holder's
//   flock (the holder is hung, that is why it was superseded): it builds its
//   own marker beside the path and renames it over the old one. The path
//   always names a marker (an old-version process can never create its own
//   in between); the superseded holder keeps a lock on an inode nobody can
//   open any more.
import { randomBytes } from 'node:crypto';
import { readSync, renameSync, unlinkSync } from 'node:fs';
import path from 'node:path';
import type { Lease } from '../lease/lease.js';
import { lock } from '../lock/acquire.js';
import type { LockHandle } from '../lock/handle.js';
import { isKernelLockRecord, MAX_RECORD_BYTES, parseRecord } from '../lock/owner-record.js';
import { native } from '../native/binding.js';
import type { SessionMarker } from './currency.js';

/** The marker a hold keeps, or null when it has none (it lost it during its own takeover). */
export type Marker = LockHandle | null;

/** Longest file name (bytes) on Linux file systems. */
const NAME_MAX = 255;

function lockOptions(owner: string | undefined, timeout: number) {
  // The marker is removed by the rules above, never by the core's release.
  return { timeout, removeOnRelease: false, ...(owner === undefined ? {} : { owner }) };
}

/** Takes the marker after a lease granted on a free session: it waits only for a plain lock() holder. */
export function takeMarker(lockPath: string, owner: string | undefined, timeout: number): Promise<LockHandle> {
  return lock(lockPath, lockOptions(owner, timeout));
}

/**
 * Takes the marker after `lease` superseded a live holder: a fresh file
 * beside it, locked and filled with our record, renamed over the path under
 * the fence. Returns null (and leaves nothing behind) when the lease was
 * superseded in turn before the rename.
 */
export async function replaceMarker(lockPath: string, owner: string | undefined, lease: Lease): Promise<Marker> {
  const suffix = `${process.pid}-${randomBytes(4).toString('hex')}.takeover`;
  const named = `.${path.basename(lockPath)}.${suffix}`;
  const fresh = path.join(path.dirname(lockPath), Buffer.byteLength(named) <= NAME_MAX ? named : `.${suffix}`);
  const handle = await lock(fresh, lockOptions(owner, 0));
  try {
    await lease.write(() => renameSync(fresh, lockPath));
    return handle;
  } catch (error) {
    try {
      unlinkSync(fresh);
    } catch {
      // Renamed after all, or never created: nothing of ours is left there.
    }
    handle.releaseSync();
    if ((error as { code?: unknown }).code === 'ELEASESTALE') return null;
    throw error;
  }
}

/** Whether the marker file still holds a record written by this process. */
function holdsOurRecord(fd: number): boolean {
  try {
    const bytes = Buffer.alloc(MAX_RECORD_BYTES);
    const length = readSync(fd, bytes, 0, bytes.length, 0);
    const record = parseRecord(bytes.subarray(0, length));
    return isKernelLockRecord(record) && record?.pid === process.pid;
  } catch {
    return false;
  }
}

/**
 * Removes the marker from its path, if the path still names it and it still
 * holds our record (never a file that an old-version process put there, or
 * someone's data). Call it under the fence, and only while current.
 */
function unlinkMarker(marker: LockHandle, lockPath: string): void {
  let same = false;
  try {
    same = native.verify(marker.fd, lockPath);
  } catch {
    same = false;
  }
  if (!same || !holdsOurRecord(marker.fd)) return;
  try {
    unlinkSync(lockPath);
  } catch {
    // Already gone (removed by hand): the goal is reached.
  }
}

/** The hold's view of its marker (see SessionMarker). */
export function sessionMarker(marker: LockHandle, lockPath: string): SessionMarker {
  return {
    removeFromPath: () => unlinkMarker(marker, lockPath),
    close: () => marker.releaseSync(),
  };
}
