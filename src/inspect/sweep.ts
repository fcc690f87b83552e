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
import { fromNative, systemError } from '../lock/errors.js';
import { heldHere, inodeKey } from '../lock/held-locks.js';
import { normalizePath } from '../lock/options.js';
import { type PathText, pathText } from '../lock/path-text.js';
import { posixDescriptor } from '../lock/posix-table.js';
import { Flag, native, Out, out } from '../native/binding.js';
import { type FileKey, fileKey, KernelLocks, type ProcLock } from '../proc/proc-locks.js';
import { pidInProc } from '../proc/process-info.js';
import { checkpoint, runAsync, runSync, type Steps } from '../proc/steps.js';
import { lockFilePaths } from './names.js';

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

/** A file sweep() left in place (`path` escaped, with `pathBytes`, when the name is not UTF-8: see PathText). */
export interface SweptKept extends PathText {
  reason: KeptReason;
  /** Details in words (the error message, which lock kind is held). */
  detail: string;
}

/**
 * What sweep() did. With dryRun, `removed` lists what would have been
 * removed. A name that is not UTF-8 appears escaped (`\xHH` for each such
 * byte, `\\` for a backslash), as in PathText.
 */
export interface SweepResult {
  removed: string[];
  kept: SweptKept[];
}

/** Outcome for one file. */
export type SweepOutcome = PathText &
  ({ action: 'removed' | 'would-remove' | 'missing' } | { action: 'kept'; reason: KeptReason; detail: string });

const FCNTL_KIND = native.ofdSupported ? Flag.ofd : Flag.posix;

const FOREIGN = 'holds data that is not a lock record; never removed';
const LEASE = 'a lease file: removing it would let its fencing token start again from 1';

/**
 * Removes one lock file if, and only if, its lock can be taken without
 * waiting (flock and fcntl alike), unlinking it while holding the lock.
 * Missing files are reported as such and never created for long: if the
 * file vanishes between the check and the open, the file the open creates
 * is removed by the same protocol.
 */
export function sweepFile(pathInput: string | Buffer, options: { dryRun?: boolean } = {}): SweepOutcome {
  return runSync(sweepOne(pathInput, options.dryRun ?? false, new KernelLocks()));
}

function* sweepOne(pathInput: string | Buffer, dryRun: boolean, kernel: KernelLocks): Steps<SweepOutcome> {
  const { path: lockPath } = normalizePath(pathInput);
  const text = pathText(lockPath);
  const display = text.path;
  let st = lstatSync(lockPath, { bigint: true, throwIfNoEntry: false });
  let kernelLocks: ProcLock[] = [];
  for (let attempt = 1; st?.isFile() === true && attempt <= 3; attempt++) {
    // The one step: whether this process holds a POSIX lock on the file by
    // other means. Everything after it is one synchronous stretch (see
    // lock/holder-look.ts), on the file as it is now.
    const key = fileKey(st.dev, st.ino);
    kernelLocks = yield* kernel.of(key);
    st = lstatSync(lockPath, { bigint: true, throwIfNoEntry: false });
    if (st === undefined || fileKey(st.dev, st.ino) === key) break;
  }
  if (st === undefined) return { ...text, action: 'missing' };
  if (!st.isFile()) {
    return { ...text, action: 'kept', reason: 'not-a-regular-file', detail: 'not a regular file; left alone' };
  }
  // Opening and closing a descriptor of a file this process holds a POSIX
  // lock on would drop that lock; a lock of ours is held anyway.
  const selfKey = inodeKey(Number(st.dev), Number(st.ino));
  const me = pidInProc();
  const ownPosix =
    heldHere(selfKey) > 0 ||
    posixDescriptor(selfKey) !== undefined ||
    kernelLocks.some((l) => l.kind === 'posix' && !l.blocked && l.pid === me);
  if (ownPosix) return { ...text, action: 'kept', reason: 'held-by-self', detail: 'held by this process' };
  let fd: number;
  try {
    // No record argument: the sweeper writes nothing into the file.
    fd = native.acquire(lockPath, Flag.flock, 0, 0);
  } catch (error) {
    const converted = fromNative(error, display) as Error;
    if ((converted as NodeJS.ErrnoException).code === 'ENOENT') return { ...text, action: 'missing' };
    return { ...text, action: 'kept', reason: 'error', detail: converted.message };
  }
  if (fd === -1) return { ...text, action: 'kept', reason: 'held', detail: 'a flock lock is held' };
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
    return { ...text, action: 'kept', reason: 'error', detail: (fromNative(error, display) as Error).message };
  }
  if (!fcntlFree) {
    native.release(fd, lockPath, Flag.flock, 0, 0);
    return { ...text, action: 'kept', reason: 'held', detail: 'an fcntl (OFD or POSIX) lock is held' };
  }
  const content = native.contentKind(fd);
  if (content === 'foreign' || content === 'lease') {
    native.release(fd, lockPath, Flag.flock, 0, 0);
    return content === 'lease'
      ? { ...text, action: 'kept', reason: 'lease', detail: LEASE }
      : { ...text, action: 'kept', reason: 'foreign-content', detail: FOREIGN };
  }
  if (dryRun) {
    native.release(fd, lockPath, Flag.flock, 0, 0);
    return { ...text, action: 'would-remove' };
  }
  // Unlinks only while the path still names the inode we hold, then closes,
  // which drops both locks.
  const result = native.release(fd, lockPath, Flag.flock | Flag.unlink, 0, 0);
  if (result === 1) return { ...text, action: 'removed' };
  if (result === 0) return { ...text, action: 'missing' }; // replaced or removed meanwhile: not ours to judge
  if (result === 2) return { ...text, action: 'kept', reason: 'foreign-content', detail: FOREIGN };
  return { ...text, action: 'kept', reason: 'error', detail: systemError(result, 'unlink', display).message };
}

function* sweepSteps(dir: string | Buffer, options: SweepOptions = {}): Steps<SweepOutcome[]> {
  const paths = yield* lockFilePaths(dir, options.suffix ?? '.lock');
  const kernel = new KernelLocks();
  // One /proc/locks read for every file (see sweepOne: it answers "is a POSIX lock of ours there?").
  const keys: FileKey[] = [];
  for (const p of paths) {
    const st = lstatSync(p, { bigint: true, throwIfNoEntry: false });
    if (st?.isFile()) keys.push(fileKey(st.dev, st.ino));
  }
  yield* kernel.load(keys);
  const outcomes: SweepOutcome[] = [];
  for (const p of paths) {
    outcomes.push(yield* sweepOne(p, options.dryRun ?? false, kernel));
    yield* checkpoint();
  }
  return outcomes;
}

/** The per-file outcomes of a sweep, summed up. */
export function sweepResult(outcomes: readonly SweepOutcome[]): SweepResult {
  const result: SweepResult = { removed: [], kept: [] };
  for (const outcome of outcomes) {
    if (outcome.action === 'removed' || outcome.action === 'would-remove') result.removed.push(outcome.path);
    else if (outcome.action === 'kept') {
      const { action: _, ...kept } = outcome;
      result.kept.push(kept);
    }
  }
  return result;
}

/** Synchronous sweep(). */
export function sweepSync(dir: string | Buffer, options?: SweepOptions): SweepResult {
  return sweepResult(runSync(sweepSteps(dir, options)));
}

/** sweep(), file by file (the CLI prints each name from its exact bytes). */
export function sweepOutcomes(dir: string | Buffer, options?: SweepOptions): Promise<SweepOutcome[]> {
  return runAsync(sweepSteps(dir, options));
}

/**
 * Removes every `*<suffix>` file in `dir` (default `*.lock`) whose lock can
 * be taken without waiting, unlinking it while holding the lock. Held locks
 * (any kind, any process, any pid namespace) are kept. Safe to run while
 * other processes are acquiring and releasing. Names are handled as bytes;
 * the event loop is given back between files.
 */
export async function sweep(dir: string | Buffer, options?: SweepOptions): Promise<SweepResult> {
  return sweepResult(await sweepOutcomes(dir, options));
}
