// Names the holder in a timeout error's message, at a bounded cost: a
// timeout must cost little more than the wait's own bookkeeping.
//
// First the owner record. When it names a live process of our own pid
// namespace, with the recorded start time, that one process's descriptors
// (/proc/<pid>/fdinfo: a few dozen small reads for a typical holder) say
// whether it holds the lock exclusively; if it does, it is named without
// reading /proc/locks at all, whose read stalls every lock call on the host
// (see proc/proc-locks.ts). Otherwise one look (holder-look.ts): /proc/locks
// filtered to this file, a probe, and a descriptor search bounded in reads
// and in time. lock()'s timeout makes every /proc read off the event loop
// (proc/steps.ts); lockSync()'s makes them inline, within the same bounds.
import { lstatSync } from 'node:fs';
import { findDescriptorHolders } from '../proc/descriptors.js';
import type { LockHolder } from '../proc/holders.js';
import { type FileKey, fileKey, type LockKind } from '../proc/proc-locks.js';
import { ownPidNamespace, pidInProc } from '../proc/process-info.js';
import { runAsync, runSync, type Steps } from '../proc/steps.js';
import { inodeKey } from './held-locks.js';
import { finishLooks, type LookContext, lookAt, newLookContext, recordPidHere } from './holder-look.js';
import type { HolderSnapshot } from './holder-snapshot.js';
import { describeSnapshot } from './holder-text.js';
import { type LeaseProbe, leaseView, probeLease } from './lease-view.js';
import type { LockRequest } from './options.js';
import type { OwnerRecord } from './owner-record.js';
import { pathText } from './path-text.js';
import { posixDescriptor } from './posix-table.js';
import { closeProbe, openForProbe, readRecordFrom } from './probe.js';

/** A holder description: the text appended to the timeout message, and the snapshot behind it. */
export interface HolderDescription {
  detail: string;
  holder: HolderSnapshot | null;
}

/** Bounds of the search for the processes behind an OFD or inherited lock. */
interface SearchBounds {
  maxDescriptors: number;
  ms: number;
}

/** lock(): reads run off the loop, so a busier host may take longer in wall time. */
const ASYNC_BOUNDS: SearchBounds = { maxDescriptors: 4096, ms: 500 };
/** lockSync(): every read blocks the caller. */
const SYNC_BOUNDS: SearchBounds = { maxDescriptors: 1024, ms: 50 };
/** Descriptors of the record's process read to confirm it holds the lock. */
const MAX_RECORD_PROCESS_DESCRIPTORS = 4096;

/** What readRecordOf() reads through one descriptor. */
interface RecordRead {
  key: FileKey;
  record: OwnerRecord | null;
  lease: LeaseProbe | null;
}

function readThrough(key: FileKey, fd: number): RecordRead {
  return { key, record: readRecordFrom(fd), lease: probeLease(fd) };
}

/** The file's key, owner record and lease, read in one synchronous stretch (see holder-look.ts). */
function readRecordOf(path: string | Buffer): RecordRead | null {
  const st = lstatSync(path, { bigint: true, throwIfNoEntry: false });
  if (st === undefined || !st.isFile()) return null;
  const key = fileKey(st.dev, st.ino);
  const ownFd = posixDescriptor(inodeKey(Number(st.dev), Number(st.ino)));
  // Through the descriptor this process's POSIX locks live on: closing another would drop them.
  if (ownFd !== undefined) return readThrough(key, ownFd);
  const opened = openForProbe(path);
  if (opened === null || opened === 'denied') return null;
  try {
    if (!opened.regular || opened.dev !== st.dev || opened.ino !== st.ino) return null;
    return readThrough(key, opened.fd);
  } finally {
    closeProbe(opened.fd);
  }
}

const isFcntl = (kind: LockKind): boolean => kind !== 'flock';

/**
 * The holder the owner record names, confirmed by the kernel through that
 * process's own descriptors: an exclusive whole-file lock of the record's
 * kind on this file, which no other holder of a conflicting lock can share.
 * Null when the record cannot be confirmed this way.
 */
function* recordHolder(req: LockRequest, ctx: LookContext): Steps<HolderSnapshot | null> {
  const seen = readRecordOf(req.path);
  const record = seen?.record ?? null;
  const pid = recordPidHere(record);
  if (seen === null || record === null || pid === null) return null;
  if (record.kind === undefined || record.starttime === undefined || isFcntl(record.kind) !== isFcntl(req.kind)) {
    return null;
  }
  const info = yield* ctx.processes.of(pid);
  if (!info.alive || info.starttime !== record.starttime) return null;
  const found = yield* findDescriptorHolders(new Set([seen.key]), {
    pids: [pid],
    maxDescriptors: MAX_RECORD_PROCESS_DESCRIPTORS,
  });
  const confirmed = found.holders
    .get(seen.key)
    ?.some(
      (d) =>
        d.kind === record.kind &&
        d.mode === 'exclusive' &&
        (d.range === undefined || (d.range.start === 0 && d.range.length === 0)),
    );
  if (confirmed !== true) return null;
  const self = pid === pidInProc();
  const own = ownPidNamespace();
  const whole = { start: 0, length: 0 };
  // The same holder a look through /proc/locks would report: an OFD lock
  // names no pid there, its process comes from the descriptors.
  const holder: LockHolder =
    record.kind === 'ofd'
      ? {
          pid: -1,
          kind: 'ofd',
          mode: 'exclusive',
          range: whole,
          visible: false,
          alive: null,
          sameNamespace: null,
          self,
          pidInNamespace: null,
          argv: null,
          descriptors: [{ pid, alive: true, argv: info.argv }],
        }
      : {
          pid,
          kind: record.kind,
          mode: 'exclusive',
          ...(record.kind === 'posix' ? { range: whole } : {}),
          visible: true,
          alive: true,
          sameNamespace: info.pidNamespace === null || own === null ? null : info.pidNamespace === own,
          self,
          pidInNamespace: null,
          argv: info.argv,
          descriptors: null,
        };
  const created = record.createdAt === undefined ? Number.NaN : Date.parse(record.createdAt);
  return {
    ...pathText(req.path),
    exists: true,
    held: true,
    state: self ? 'held-by-self' : 'held',
    holders: [holder],
    record,
    recordMatchesHolder: true,
    heldForMs: Number.isFinite(created) ? Math.max(0, Date.now() - created) : null,
    notes: [],
    // A lease file this holder locks as a whole: no lease is alive, but its token is still worth telling.
    lease: seen.lease === null ? null : leaseView(seen.lease),
  };
}

function* holderSteps(req: LockRequest, bounds: SearchBounds): Steps<HolderSnapshot> {
  const ctx = newLookContext();
  const confirmed = yield* recordHolder(req, ctx);
  if (confirmed !== null) return confirmed;
  const look = yield* lookAt(req.path, ctx);
  const limits = { maxDescriptors: bounds.maxDescriptors, deadline: performance.now() + bounds.ms };
  yield* finishLooks([look], ctx, { search: true, recordFirst: true, limits });
  return look.snapshot;
}

function described(holder: HolderSnapshot): HolderDescription {
  return { detail: describeSnapshot(holder), holder };
}

function notInspectable(error: unknown): HolderDescription {
  // The description is a courtesy; the timeout itself is the error.
  return { detail: `held by another process (not inspectable: ${(error as Error).message})`, holder: null };
}

/** Who holds the lock `req` timed out on, with every /proc read off the event loop. */
export async function describeHolder(req: LockRequest): Promise<HolderDescription> {
  try {
    return described(await runAsync(holderSteps(req, ASYNC_BOUNDS)));
  } catch (error) {
    return notInspectable(error);
  }
}

/** Synchronous describeHolder(), for lockSync()'s timeout. */
export function describeHolderSync(req: LockRequest): HolderDescription {
  try {
    return described(runSync(holderSteps(req, SYNC_BOUNDS)));
  } catch (error) {
    return notInspectable(error);
  }
}
