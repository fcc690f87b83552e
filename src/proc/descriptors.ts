// Finding the processes that actually hold a lock through their descriptors.
// /proc/locks names the process that TOOK a lock; for an OFD lock it names
// nobody (-1), and a flock lock outlives its taker when the descriptor was
// inherited (flock(1), `kernel-lock run`, a fork). /proc/<pid>/fdinfo/<fd>
// lists, per descriptor, the locks held through it ("lock:" lines in the
// /proc/locks format), which names the real holders.
//
// Reading every descriptor of every process is costly (10,000 descriptors
// on the host are 10,000 reads), so a search is always bounded: by a
// number of descriptors, optionally by a deadline, and to given processes
// when a candidate is known (the pid an owner record names). The reads are
// native (native/fdinfo_search.h): in the async API on a waiter thread,
// never the event loop nor libuv's threadpool, and only the lines naming
// the searched files come back, so the loop's work grows with the matches,
// not with the host. (Read on the loop, in slices, each fdinfo file cost
// garbage and the odd read took 0.3–0.75 ms in the kernel: the loop stalled
// 1.2–3 ms per call with 10,000 OFD locks on the host; docs/PERFORMANCE.md.)
// The same search written in JavaScript steps remains as the fallback when
// no thread can be started. fdinfo is read rather than stat()ing
// /proc/<pid>/fd/<n>, because fdinfo comes from the open file itself, while
// stat() asks the file system (a hung NFS mount would hang it).
import {
  type FileKey,
  type LockKind,
  type LockMode,
  type LockRange,
  ProcLocksFilter,
  procLocksField,
} from './proc-locks.js';
import { checkpoint, readdirNames, type Steps, searchFdinfo, visitFiles } from './steps.js';

/** A process holding a lock through one of its descriptors. */
export interface DescriptorHolder {
  pid: number;
  fd: number;
  kind: LockKind;
  mode: LockMode;
  /** Byte range of an fcntl lock (length 0 = to end of file); undefined for flock. */
  range: LockRange | undefined;
}

/** Where a descriptor search looks, and how much it may read. */
export interface DescriptorSearch {
  /** Only these processes (e.g. the pid an owner record names); every process in /proc when absent. */
  pids?: readonly number[];
  /** At most this many descriptors are read; the search is then reported incomplete. */
  maxDescriptors: number;
  /** A performance.now() time after which the search stops, incomplete. */
  deadline?: number;
}

/** What a search found: holders per file, and whether it looked everywhere it was asked to. */
export interface DescriptorSearchResult {
  holders: Map<FileKey, DescriptorHolder[]>;
  complete: boolean;
}

/** Upper bound on fdinfo files read by inspect(): enough for a busy host, bounded for a huge one. */
export const MAX_FDINFO_READS = 20_000;

/** Matches parsed between two checkpoints of the async driver. */
const MATCHES_PER_SLICE = 64;

/** Descriptors read per step of the JavaScript search: small enough that parsing one batch stays well inside a loop slice. */
const BATCH = 128;
/** An fdinfo file is a few lines; a page holds dozens of lock lines. */
const MAX_FDINFO_BYTES = 4096;

const isPid = (name: string): boolean => /^\d+$/.test(name);

/**
 * Reads /proc/<pid>/fdinfo of the searched processes for descriptors that
 * carry a granted lock on any of `keys`. One entry per process, kind and
 * first byte: a forked child shares its parent's descriptors.
 */
export function* findDescriptorHolders(
  keys: ReadonlySet<FileKey>,
  search: DescriptorSearch,
): Steps<DescriptorSearchResult> {
  if (keys.size === 0 || process.platform !== 'linux') return { holders: new Map(), complete: keys.size === 0 };
  const fields = [...keys].map(procLocksField);
  const found = yield* searchFdinfo(fields, search.pids ?? null, search.maxDescriptors, search.deadline);
  if (found === null) return yield* findDescriptorHoldersInSteps(keys, search);
  const holders = new Map<FileKey, DescriptorHolder[]>();
  const filter = new ProcLocksFilter(keys);
  for (let i = 0; i < found.pids.length; i++) {
    if (i % MATCHES_PER_SLICE === MATCHES_PER_SLICE - 1) yield* checkpoint();
    collect(holders, filter, found.pids[i]!, found.fds[i]!, Buffer.from(found.lines[i]!, 'latin1'));
  }
  return { holders, complete: found.complete };
}

/**
 * The same search with every fdinfo file read from JavaScript (on the loop
 * in slices, in the async driver): the fallback when the native search
 * cannot start its thread, and the reference it is tested against.
 */
export function* findDescriptorHoldersInSteps(
  keys: ReadonlySet<FileKey>,
  search: DescriptorSearch,
): Steps<DescriptorSearchResult> {
  const holders = new Map<FileKey, DescriptorHolder[]>();
  if (keys.size === 0 || process.platform !== 'linux') return { holders, complete: keys.size === 0 };
  let pids = search.pids;
  if (pids === undefined) {
    const names = yield* readdirNames('/proc');
    if (names === null) return { holders, complete: false };
    pids = names.filter(isPid).map(Number);
  }
  let budget = search.maxDescriptors;
  const filter = new ProcLocksFilter(keys);
  for (const pid of pids) {
    const fds = yield* readdirNames(`/proc/${pid}/fdinfo`);
    if (fds === null) continue; // gone, or not ours to read
    for (let i = 0; i < fds.length; ) {
      if (budget <= 0 || (search.deadline !== undefined && performance.now() > search.deadline)) {
        return { holders, complete: false };
      }
      // Advanced by what was read: a budget that runs out inside the batch leaves the rest, and so reports incomplete.
      const batch = fds.slice(i, i + Math.min(BATCH, budget));
      budget -= batch.length;
      i += batch.length;
      yield* visitFiles(
        batch.map((fd) => `/proc/${pid}/fdinfo/${fd}`),
        MAX_FDINFO_BYTES,
        (j, info) => collect(holders, filter, pid, Number(batch[j]), info),
      );
      yield* checkpoint();
    }
  }
  return { holders, complete: true };
}

/** Adds the locks one fdinfo file shows on any of `keys`. */
function collect(
  holders: Map<FileKey, DescriptorHolder[]>,
  filter: ProcLocksFilter,
  pid: number,
  fd: number,
  info: Buffer,
): void {
  if (info.indexOf('lock:') === -1) return;
  // "lock:\t1: FLOCK ..." lines: the filter finds the device field in them as in /proc/locks.
  filter.reset();
  filter.push(info);
  for (const [key, locks] of filter.end()) {
    const list = holders.get(key) ?? [];
    for (const lock of locks) {
      if (lock.blocked) continue;
      // One entry per process and lock (a forked child shares its parent's
      // descriptors), told apart by first byte: a lease file carries one OFD
      // lock per token.
      const start = lock.range?.start;
      if (!list.some((h) => h.pid === pid && h.kind === lock.kind && h.range?.start === start)) {
        list.push({ pid, fd, kind: lock.kind, mode: lock.mode, range: lock.range });
      }
    }
    if (list.length > 0) holders.set(key, list);
  }
}
