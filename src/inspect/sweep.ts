// sweep(): the safe replacement for `rm -f sessions/*.lock`. A file is
// removed only by a process that holds its lock, exactly as release() does:
// take the lock without waiting, unlink while holding it, then close. A
// process that was waiting on the old file wakes holding a lock on an
// unlinked inode, notices (its acquisition re-verifies the path) and starts
// over on a fresh file. A held lock is never touched: the attempt simply fails.
//
// kernel-lock's lock kinds do not exclude each other (flock and fcntl locks
// are independent in the kernel), so the sweeper holds BOTH a flock lock and
// a whole-file fcntl lock while it unlinks: a holder of either kind keeps
// its file. A file holding anything but an owner record or a legacy marker
// (a script, a database, somebody's data) is never removed, nor is a lease
// file, whose fencing token must outlive every holder.
//
// Safe only next to lockers that re-check the inode after locking
// (kernel-lock does): one that opened the file before the unlink and locks
// after it holds a lock on the removed inode while the next locker creates a
// new file. docs/GUARANTEES.md lists the peers.
import { lstatSync } from 'node:fs';
import path from 'node:path';
import { fromNative, systemError } from '../lock/errors.js';
import { heldHere, inodeKey } from '../lock/held-locks.js';
import { Flag, native, Out, out } from '../lock/native.js';
import { normalizePath } from '../lock/options.js';
import { posixDescriptor } from '../lock/posix-table.js';
import { fileKey, type ProcLocks, readProcLocks } from '../proc/proc-locks.js';
import { pidInProc } from '../proc/process-info.js';
import { lockFileNames } from './scan.js';

/** Options of sweep(). */
export interface SweepOptions {
  /** Only names ending with this are considered. Default '.lock'. */
  suffix?: string;
  /** Decide, lock and report, but remove nothing. Default false. */
  dryRun?: boolean;
}

/**
 * Why a file was kept. `foreign-content`: it holds data that is not a lock record; `lease`: a lease file, whose
 * fencing token must outlive every holder.
 */
export type KeptReason = 'held' | 'held-by-self' | 'not-a-regular-file' | 'foreign-content' | 'lease' | 'error';

/** A file sweep() left in place. */
export interface SweptKept {
  path: string;
  reason: KeptReason;
  /** Details in words (the error message, which lock kind is held). */
  detail: string;
}

/** What sweep() did. With dryRun, `removed` lists what would have been removed. */
export interface SweepResult {
  removed: string[];
  kept: SweptKept[];
}

/** Outcome for one file. */
export type SweepOutcome =
  | { path: string; action: 'removed' | 'would-remove' | 'missing' }
  | { path: string; action: 'kept'; reason: KeptReason; detail: string };

const FCNTL_KIND = native.ofdSupported ? Flag.ofd : Flag.posix;

const FOREIGN = 'holds data that is not a lock record; never removed';
const LEASE = 'a lease file: removing it would let its fencing token start again from 1';

function ownPosixByOtherMeans(procLocks: ProcLocks | null, dev: bigint, ino: bigint): boolean {
  const me = pidInProc();
  return (procLocks?.get(fileKey(dev, ino)) ?? []).some((l) => l.kind === 'posix' && !l.blocked && l.pid === me);
}

/**
 * Removes one lock file if, and only if, its lock can be taken without
 * waiting (flock and fcntl alike), unlinking it while holding the lock.
 * Missing files are reported as such and never created for long: if the
 * file vanishes between the check and the open, the file the open creates
 * is removed by the same protocol.
 */
export function sweepFile(
  pathInput: string | Buffer,
  options: { dryRun?: boolean; procLocks?: ProcLocks | null } = {},
): SweepOutcome {
  const { path: lockPath, display } = normalizePath(pathInput);
  const st = lstatSync(lockPath, { bigint: true, throwIfNoEntry: false });
  if (st === undefined) return { path: display, action: 'missing' };
  if (!st.isFile()) {
    return { path: display, action: 'kept', reason: 'not-a-regular-file', detail: 'not a regular file; left alone' };
  }
  // Opening and closing a descriptor of a file this process holds a POSIX
  // lock on would drop that lock; a lock of ours is held anyway.
  const selfKey = inodeKey(Number(st.dev), Number(st.ino));
  const procLocks = options.procLocks === undefined ? readProcLocks() : options.procLocks;
  if (
    heldHere(selfKey) > 0 ||
    posixDescriptor(selfKey) !== undefined ||
    ownPosixByOtherMeans(procLocks, st.dev, st.ino)
  ) {
    return { path: display, action: 'kept', reason: 'held-by-self', detail: 'held by this process' };
  }
  let fd: number;
  try {
    // No record argument: the sweeper writes nothing into the file.
    fd = native.acquire(lockPath, Flag.flock, 0, 0);
  } catch (error) {
    const converted = fromNative(error, display) as Error;
    if ((converted as NodeJS.ErrnoException).code === 'ENOENT') return { path: display, action: 'missing' };
    return { path: display, action: 'kept', reason: 'error', detail: converted.message };
  }
  if (fd === -1) return { path: display, action: 'kept', reason: 'held', detail: 'a flock lock is held' };
  const readOnly = out[Out.readOnly] !== 0;
  let fcntlFree: boolean;
  try {
    // A read-only descriptor can only take a shared fcntl lock, which other
    // shared holders would not stop; the query then catches those.
    fcntlFree =
      native.tryLock(fd, FCNTL_KIND | (readOnly ? Flag.shared : 0), 0, 0) &&
      (!readOnly || native.getLock(fd, FCNTL_KIND, 0, 0) === null);
  } catch (error) {
    native.release(fd, lockPath, Flag.flock, 0, 0);
    return { path: display, action: 'kept', reason: 'error', detail: (fromNative(error, display) as Error).message };
  }
  if (!fcntlFree) {
    native.release(fd, lockPath, Flag.flock, 0, 0);
    return { path: display, action: 'kept', reason: 'held', detail: 'an fcntl (OFD or POSIX) lock is held' };
  }
  const content = native.contentKind(fd);
  if (content === 'foreign' || content === 'lease') {
    native.release(fd, lockPath, Flag.flock, 0, 0);
    return content === 'lease'
      ? { path: display, action: 'kept', reason: 'lease', detail: LEASE }
      : { path: display, action: 'kept', reason: 'foreign-content', detail: FOREIGN };
  }
  if (options.dryRun) {
    native.release(fd, lockPath, Flag.flock, 0, 0);
    return { path: display, action: 'would-remove' };
  }
  // Unlinks only while the path still names the inode we hold, then closes,
  // which drops both locks.
  const result = native.release(fd, lockPath, Flag.flock | Flag.unlink, 0, 0);
  if (result === 1) return { path: display, action: 'removed' };
  if (result === 0) return { path: display, action: 'missing' }; // replaced or removed meanwhile: not ours to judge
  if (result === 2) return { path: display, action: 'kept', reason: 'foreign-content', detail: FOREIGN };
  return { path: display, action: 'kept', reason: 'error', detail: systemError(result, 'unlink', display).message };
}

/** Synchronous sweep(). */
export function sweepSync(dir: string, options: SweepOptions = {}): SweepResult {
  const names = lockFileNames(dir, options.suffix ?? '.lock');
  const procLocks = readProcLocks();
  const result: SweepResult = { removed: [], kept: [] };
  for (const name of names) {
    const outcome = sweepFile(path.resolve(dir, name), { dryRun: options.dryRun ?? false, procLocks });
    if (outcome.action === 'removed' || outcome.action === 'would-remove') result.removed.push(outcome.path);
    else if (outcome.action === 'kept')
      result.kept.push({ path: outcome.path, reason: outcome.reason, detail: outcome.detail });
  }
  return result;
}

/**
 * Removes every `*<suffix>` file in `dir` (default `*.lock`) whose lock can
 * be taken without waiting, unlinking it while holding the lock. Held locks
 * (any kind, any process, any pid namespace) are kept. Safe to run while
 * other processes are acquiring and releasing.
 */
export async function sweep(dir: string, options?: SweepOptions): Promise<SweepResult> {
  return sweepSync(dir, options);
}
