// One look at a lock file: who holds it, according to the kernel.
// /proc/locks names the holders (matched by device and inode); a probe
// through a descriptor of our own cross-checks it and sees what /proc/locks
// hides; the owner record only adds a label, a command line and a start
// time, and is believed only when it matches the holder the kernel named.
// Timeout errors (holder.ts) and inspect() are both built on it, so they
// always tell the same story in the same words.
//
// Reads of /proc are steps (proc/steps.ts): the async API makes them off
// the event loop. The lock file itself is opened, probed, read and closed
// in one synchronous stretch, never across a step: between two steps this
// process may take a POSIX lock on the file (a lock() call runs), and
// closing a descriptor of ours afterwards would drop that lock.
import { lstatSync } from 'node:fs';
import { native } from '../native/binding.js';
import { type DescriptorHolder, type DescriptorSearch, findDescriptorHolders } from '../proc/descriptors.js';
import { holderFromKernel, type LockHolder, ProcessLookups } from '../proc/holders.js';
import { type FileKey, fileKey, KernelLocks, type ProcLock } from '../proc/proc-locks.js';
import { pidInProc } from '../proc/process-info.js';
import { checkpoint, type Steps } from '../proc/steps.js';
import { heldHere, inodeKey } from './held-locks.js';
import { type HolderSnapshot, type LockState, SEARCH_CUT_SHORT_NOTE } from './holder-snapshot.js';
import { attachLeasePids, currentLeaseHolder, leaseView } from './lease-view.js';
import { normalizePath } from './options.js';
import type { OwnerRecord } from './owner-record.js';
import { pathText } from './path-text.js';
import { posixDescriptor } from './posix-table.js';
import { closeProbe, openForProbe, type ProbeResult, probe } from './probe.js';
import { recordScope } from './record-process.js';

/** What the looks of one inspection share: one /proc/locks read per batch of files, one look at each process. */
export interface LookContext {
  kernel: KernelLocks;
  processes: ProcessLookups;
}

/** A fresh context: nothing read yet. */
export function newLookContext(): LookContext {
  return { kernel: new KernelLocks(), processes: new ProcessLookups() };
}

/** One file's look, before descriptor holders, the record match and the state are filled in. */
export interface Look {
  snapshot: HolderSnapshot;
  /** The file's key, or null when there is no regular file to look at. */
  key: FileKey | null;
  /** The kernel's lines for the file, waiters included. */
  kernel: ProcLock[];
  /** Holders whose real processes should be looked up in fdinfo (OFD locks, inherited flock locks). */
  needDescriptors: LockHolder[];
  /** Set when every descriptor of the process the record names was read and none holds a lock here. */
  recordRuledOut?: boolean;
}

/** The kernel's list is re-read when a probe contradicts it and it is older than this. */
const STALE_MS = 2;
/** Looks at a file replaced between lstat and open at most this many times before describing it as opened. */
const MAX_ATTEMPTS = 3;

function emptySnapshot(path: string | Buffer, exists: boolean, notes: string[] = []): HolderSnapshot {
  return {
    ...pathText(path),
    exists,
    held: false,
    state: 'free',
    holders: [],
    record: null,
    recordMatchesHolder: null,
    heldForMs: null,
    notes,
    lease: null,
  };
}

function holderFromProbe(
  kind: LockHolder['kind'],
  mode: LockHolder['mode'],
  pid: number | null,
  kernelRead: boolean,
): LockHolder {
  return {
    pid,
    kind,
    mode,
    visible: false,
    alive: null,
    // A lock the probe sees but /proc/locks does not list is held by a
    // process /proc's pid namespace cannot see (the kernel hides those).
    sameNamespace: kernelRead && (pid === 0 || pid === null) ? false : null,
    self: false,
    pidInNamespace: null,
    argv: null,
    descriptors: null,
  };
}

/** Merges the kernel's list with the probe: the probe is later and sees every namespace. */
function* mergeHolders(ctx: LookContext, kernel: ProcLock[], probed: ProbeResult | null): Steps<LockHolder[]> {
  const kernelRead = ctx.kernel.readable;
  const listed = kernel.filter((l) => !l.blocked);
  let flockList: LockHolder[] = [];
  let fcntlList: LockHolder[] = [];
  for (const l of listed) (l.kind === 'flock' ? flockList : fcntlList).push(yield* holderFromKernel(l, ctx.processes));
  if (probed !== null) {
    if (probed.flock === 'free') {
      flockList = []; // released since /proc/locks was read
    } else if (probed.flock !== null && flockList.length === 0) {
      flockList = [holderFromProbe('flock', probed.flock, null, kernelRead)];
    }
    if (probed.fcntl === null) {
      // Released since /proc/locks was read. F_GETLK, the fallback where OFD
      // locks do not exist, cannot see our own POSIX locks: keep those.
      fcntlList = native.ofdSupported ? [] : fcntlList.filter((h) => h.self);
    } else if (probed.fcntl !== undefined && fcntlList.length === 0) {
      const { pid, mode, range } = probed.fcntl;
      if (pid > 0) {
        // F_GETLK named a visible pid /proc/locks had not listed yet.
        const lock: ProcLock = { pid, kind: 'posix', mode, range, blocked: false };
        fcntlList = [yield* holderFromKernel(lock, ctx.processes)];
      } else {
        const holder = holderFromProbe(pid === -1 ? 'ofd' : 'posix', mode, pid, kernelRead);
        holder.range = range;
        if (pid === -1) holder.sameNamespace = null;
        fcntlList = [holder];
      }
    }
  }
  return [...flockList, ...fcntlList];
}

/** True when the probe found a lock the kernel's list (read earlier) does not show. */
function contradicts(kernel: ProcLock[], probed: ProbeResult | null): boolean {
  if (probed === null) return false;
  const listed = kernel.filter((l) => !l.blocked);
  const flockHeld = probed.flock !== null && probed.flock !== 'free';
  const fcntlHeld = probed.fcntl !== null && probed.fcntl !== undefined && probed.fcntl.pid <= 0;
  return (
    (flockHeld && !listed.some((l) => l.kind === 'flock')) || (fcntlHeld && !listed.some((l) => l.kind !== 'flock'))
  );
}

type Opened =
  | { status: 'gone' }
  | { status: 'not-regular' }
  | { status: 'replaced' }
  | { status: 'probed'; probed: ProbeResult | null; notes: string[] };

/**
 * The synchronous stretch: opens the file (or uses the descriptor this
 * process's POSIX locks already live on), probes it, reads the record and
 * closes it, with no step in between.
 */
function openAndProbe(path: string | Buffer, dev: bigint, ino: bigint, kernel: ProcLock[]): Opened {
  const selfKey = inodeKey(Number(dev), Number(ino));
  const flockNamed = kernel.some((l) => l.kind === 'flock' && !l.blocked);
  const ownPosixFd = posixDescriptor(selfKey);
  if (ownPosixFd !== undefined) {
    // Read through the descriptor kernel-lock already holds: closing any
    // other descriptor of this file would drop this process's POSIX locks.
    return { status: 'probed', probed: probe(ownPosixFd, { flock: !flockNamed }), notes: [] };
  }
  const me = pidInProc();
  if (kernel.some((l) => l.kind === 'posix' && !l.blocked && l.pid === me)) {
    const note =
      'this process holds a POSIX lock on the file by other means; it was not opened, because closing a descriptor would drop that lock';
    return { status: 'probed', probed: null, notes: [note] };
  }
  const opened = openForProbe(path);
  if (opened === null) return { status: 'gone' };
  if (opened === 'denied') {
    const note = 'no permission to open the file: holders come from /proc/locks alone, and the record was not read';
    return { status: 'probed', probed: null, notes: [note] };
  }
  try {
    if (!opened.regular) return { status: 'not-regular' };
    if (opened.dev !== dev || opened.ino !== ino) return { status: 'replaced' };
    return { status: 'probed', probed: probe(opened.fd, { flock: !flockNamed }), notes: [] };
  } finally {
    closeProbe(opened.fd);
  }
}

/** Looks at one file; descriptor holders, the record match and the state are left for finishLooks(). */
export function* lookAt(pathInput: string | Buffer, ctx: LookContext): Steps<Look> {
  const { path } = normalizePath(pathInput);
  for (let attempt = 1; ; attempt++) {
    const st = lstatSync(path, { bigint: true, throwIfNoEntry: false });
    if (st === undefined) return { snapshot: emptySnapshot(path, false), key: null, kernel: [], needDescriptors: [] };
    if (!st.isFile()) {
      const what = st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : 'not a regular file';
      const notes = [`the path is ${what}; kernel-lock never locks through it`];
      return { snapshot: emptySnapshot(path, true, notes), key: null, kernel: [], needDescriptors: [] };
    }
    const key = fileKey(st.dev, st.ino);
    let kernel = yield* ctx.kernel.of(key);
    let opened = openAndProbe(path, st.dev, st.ino, kernel);
    if (opened.status === 'replaced' && attempt < MAX_ATTEMPTS) continue;
    if (opened.status === 'probed' && contradicts(kernel, opened.probed) && ctx.kernel.ageOf(key) > STALE_MS) {
      // The list may predate the lock the probe saw (a scan probes long
      // after its one read): read it again, then probe again.
      kernel = yield* ctx.kernel.refresh(key);
      opened = openAndProbe(path, st.dev, st.ino, kernel);
    }
    if (opened.status === 'gone')
      return { snapshot: emptySnapshot(path, false), key: null, kernel: [], needDescriptors: [] };
    if (opened.status !== 'probed') {
      const note =
        opened.status === 'replaced'
          ? 'the file kept being replaced while it was inspected'
          : 'the path is not a regular file';
      return { snapshot: emptySnapshot(path, true, [note]), key: null, kernel: [], needDescriptors: [] };
    }
    const notes = [...opened.notes];
    if (!ctx.kernel.readable)
      notes.unshift('/proc/locks is not readable here: holders come from probing only, without pids');
    const holders = yield* mergeHolders(ctx, kernel, opened.probed);
    const snapshot = emptySnapshot(path, true, notes);
    snapshot.held = holders.length > 0;
    snapshot.holders = holders;
    snapshot.record = opened.probed?.record ?? null;
    snapshot.lease = opened.probed?.lease ? leaseView(opened.probed.lease) : null;
    if (heldHere(inodeKey(Number(st.dev), Number(st.ino))) > 0) {
      // This thread holds a lock here, and the kernel does not name the holder
      // (OFD locks carry no pid; without /proc/locks nothing does). Until a
      // descriptor search tells our OFD locks from others', assume they are ours.
      for (const h of holders) if (h.pid === -1 || (h.pid === null && !ctx.kernel.readable)) h.self = true;
    }
    const needDescriptors = holders.filter((h) => h.pid === -1 || (h.visible && h.alive === false));
    yield* checkpoint();
    return { snapshot, key, kernel, needDescriptors };
  }
}

/** How finishLooks() looks for the processes behind OFD and inherited locks. */
export interface DescriptorPolicy {
  /** False: no search at all (inspect's `descriptors: false`). */
  search: boolean;
  /** Search the process the owner record names first; the host only if that does not name every holder. */
  recordFirst: boolean;
  /** Bounds of the host-wide search. */
  limits: Omit<DescriptorSearch, 'pids'>;
}

/** The record's pid when it is a pid of our own /proc, the only place it can be looked up. */
export function recordPidHere(record: OwnerRecord | null): number | null {
  if (record?.pid === undefined || record.pid <= 0 || recordScope(record) !== 'here') return null;
  return pidInProc() === process.pid ? record.pid : null;
}

/** Fills in descriptor holders for every look that needs them, within the policy's bounds. */
function* fillDescriptors(looks: readonly Look[], ctx: LookContext, policy: DescriptorPolicy): Steps<void> {
  let waiting = looks.filter((l) => l.key !== null && l.needDescriptors.length > 0);
  if (!policy.search || waiting.length === 0) return;
  if (policy.recordFirst) {
    const pids = [...new Set(waiting.map((l) => recordPidHere(l.snapshot.record)).filter((p) => p !== null))];
    if (pids.length > 0) {
      const keys = new Set(waiting.map((l) => l.key!));
      // One process: bounded by descriptors, not by the deadline, so that a
      // loaded machine still tells whether the record's process holds the lock.
      const found = yield* findDescriptorHolders(keys, { maxDescriptors: policy.limits.maxDescriptors, pids });
      for (const look of waiting) {
        const list = found.holders.get(look.key!) ?? [];
        yield* applyDescriptors(look, list, ctx);
        const pid = recordPidHere(look.snapshot.record);
        // The record's process was read in full and holds nothing here: the record is an earlier holder's.
        if (found.complete && pid !== null && !list.some((d) => d.pid === pid)) look.recordRuledOut = true;
      }
      waiting = waiting.filter((l) => l.needDescriptors.some((h) => (h.descriptors ?? []).length === 0));
    }
  }
  if (waiting.length === 0) return;
  const found = yield* findDescriptorHolders(new Set(waiting.map((l) => l.key!)), policy.limits);
  for (const look of waiting) {
    yield* applyDescriptors(look, found.holders.get(look.key!) ?? [], ctx);
    if (!found.complete) look.snapshot.notes.push(SEARCH_CUT_SHORT_NOTE);
  }
}

function* applyDescriptors(look: Look, list: readonly DescriptorHolder[], ctx: LookContext): Steps<void> {
  const me = pidInProc();
  for (const h of look.needDescriptors) {
    // Already named by the search of the record's process: kept, because a
    // host-wide search that follows (for another holder, such as a lease's
    // superseded one) may be cut short before it reaches that process.
    if (h.descriptors !== null && h.descriptors.length > 0) continue;
    h.descriptors = [];
    for (const d of list) {
      // Matched by first byte too: a lease file carries one OFD lock per token.
      if (d.kind !== h.kind || (d.range !== undefined && d.range.start !== h.range?.start)) continue;
      const info = yield* ctx.processes.of(d.pid);
      h.descriptors.push({ pid: d.pid, alive: info.alive, argv: info.argv });
    }
    // fdinfo names processes, not the open file behind each lock, so
    // several OFD locks of one kind cannot be told apart: the lock is
    // ours only when every process holding such a lock is us.
    if (h.pid === -1) h.self = h.descriptors.length > 0 && h.descriptors.every((d) => d.pid === me);
  }
  if (look.snapshot.lease !== null) yield* attachLeasePids(look.snapshot.lease, list, ctx.processes);
}

function* matchesHolder(snapshot: HolderSnapshot, ctx: LookContext): Steps<boolean | null> {
  const { record, holders } = snapshot;
  if (!snapshot.held || record === null || record.pid === undefined) return null;
  // On a lease file the record is the current lease's (each grant rewrites it).
  const exclusive = currentLeaseHolder(snapshot.lease, holders) ?? holders.find((h) => h.mode === 'exclusive');
  if (exclusive === undefined) return false; // shared holders write no record: it is an older holder's
  if (record.kind !== undefined && record.kind !== exclusive.kind) return false;
  const candidates: number[] = [];
  if (exclusive.visible && exclusive.pid !== null) candidates.push(exclusive.pidInNamespace ?? exclusive.pid);
  for (const d of exclusive.descriptors ?? []) candidates.push(d.pid);
  if (candidates.length === 0) return null;
  if (!candidates.includes(record.pid)) return false;
  if (exclusive.visible && exclusive.alive && exclusive.pid !== null && record.starttime !== undefined) {
    // The start time, in ticks since boot, is the same in every namespace.
    const info = yield* ctx.processes.of(exclusive.pid);
    if (info.starttime !== null && record.pid === (exclusive.pidInNamespace ?? exclusive.pid)) {
      return info.starttime === record.starttime;
    }
  }
  return true;
}

/** The state of a finished snapshot; `recordAlive` false makes an unheld file an orphan record. */
export function stateOf(snapshot: HolderSnapshot, recordAlive?: boolean | null): LockState {
  if (snapshot.held) return snapshot.holders.every((h) => h.self) ? 'held-by-self' : 'held';
  if (snapshot.exists && recordAlive === false) return 'orphan-record';
  return 'free';
}

/** Completes looks: descriptor holders (one search for all), the record match, the holding time and the state. */
export function* finishLooks(looks: readonly Look[], ctx: LookContext, policy: DescriptorPolicy): Steps<void> {
  yield* fillDescriptors(looks, ctx, policy);
  const now = Date.now();
  for (const { snapshot, recordRuledOut } of looks) {
    snapshot.recordMatchesHolder = recordRuledOut === true ? false : yield* matchesHolder(snapshot, ctx);
    const created = snapshot.record?.createdAt === undefined ? Number.NaN : Date.parse(snapshot.record.createdAt);
    snapshot.heldForMs =
      snapshot.recordMatchesHolder === true && Number.isFinite(created) ? Math.max(0, now - created) : null;
    snapshot.state = stateOf(snapshot);
    yield* checkpoint();
  }
}
