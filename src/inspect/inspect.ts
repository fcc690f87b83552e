// inspect(): who holds a lock file, from the kernel. /proc/locks names the
// holders (matched by device and inode); a probe through a descriptor of our
// own cross-checks it and sees what /proc/locks hides; the owner record only
// adds a label, a command line and a start time, and is believed only when it
// matches the holder the kernel named.
//
// Everything here is synchronous and small (one read of /proc/locks, one
// lstat, one open, two lock calls, one 4 KiB read per file, a few /proc
// reads per holder), so the same code serves the synchronous timeout path;
// the async API simply wraps it and never occupies libuv's threadpool.
import { lstatSync } from 'node:fs';
import { heldHere, inodeKey } from '../lock/held-locks.js';
import { native } from '../lock/native.js';
import { normalizePath } from '../lock/options.js';
import { posixDescriptor } from '../lock/posix-table.js';
import { findDescriptorHolders } from '../proc/descriptors.js';
import { type FileKey, fileKey, type ProcLock, type ProcLocks, readProcLocks } from '../proc/proc-locks.js';
import { ownPidNamespace, type ProcessInfo, pidInProc, processInfo } from '../proc/process-info.js';
import { attachLeasePids, currentLeaseHolder, leaseView } from './lease-view.js';
import { closeProbe, openForProbe, type ProbeResult, probe } from './probe.js';
import { recordProcess } from './record-process.js';
import type { DescriptorProcess, LockHolder, LockInspection, LockState } from './types.js';

/** Options of inspect() and scan(). */
export interface InspectOptions {
  /**
   * Look through /proc/<pid>/fdinfo for the real holders of OFD locks and of
   * flock locks whose taker has exited (default true). Costs one read per open
   * descriptor on the host, bounded.
   */
  descriptors?: boolean;
}

/** Shared state of one inspection run: one /proc/locks read, one look at each process. */
export interface InspectContext {
  procLocks: ProcLocks | null;
  processes: Map<number, ProcessInfo>;
  descriptors: boolean;
}

/** A fresh context: reads /proc/locks now. */
export function newContext(options: InspectOptions = {}): InspectContext {
  return { procLocks: readProcLocks(), processes: new Map(), descriptors: options.descriptors ?? true };
}

function lookProcess(ctx: InspectContext, pid: number): ProcessInfo {
  let info = ctx.processes.get(pid);
  if (info === undefined) {
    info = processInfo(pid);
    ctx.processes.set(pid, info);
  }
  return info;
}

function holderFromKernel(ctx: InspectContext, lock: ProcLock): LockHolder {
  const holder: LockHolder = {
    pid: lock.pid,
    kind: lock.kind,
    mode: lock.mode,
    visible: lock.pid > 0,
    alive: null,
    sameNamespace: null,
    self: false,
    pidInNamespace: null,
    argv: null,
    descriptors: null,
  };
  if (lock.range !== undefined) holder.range = lock.range;
  if (lock.pid > 0) {
    const info = lookProcess(ctx, lock.pid);
    holder.alive = info.alive;
    holder.self = lock.pid === pidInProc();
    if (info.alive) {
      holder.argv = info.argv;
      const own = ownPidNamespace();
      holder.sameNamespace = info.pidNamespace === null || own === null ? null : info.pidNamespace === own;
      const inner = info.nspid?.at(-1);
      if (inner !== undefined && inner !== lock.pid) holder.pidInNamespace = inner;
    }
  }
  return holder;
}

function holderFromProbe(
  kind: LockHolder['kind'],
  mode: LockHolder['mode'],
  pid: number | null,
  procLocksRead: boolean,
): LockHolder {
  return {
    pid,
    kind,
    mode,
    visible: false,
    alive: null,
    // A lock the probe sees but /proc/locks does not list is held by a
    // process /proc's pid namespace cannot see (the kernel hides those).
    sameNamespace: procLocksRead && (pid === 0 || pid === null) ? false : null,
    self: false,
    pidInNamespace: null,
    argv: null,
    descriptors: null,
  };
}

/** Merges the kernel's list with the probe: the probe is later and sees every namespace. */
function mergeHolders(ctx: InspectContext, kernel: ProcLock[], probed: ProbeResult | null): LockHolder[] {
  const procLocksRead = ctx.procLocks !== null;
  const listed = kernel.filter((l) => !l.blocked);
  let flockList = listed.filter((l) => l.kind === 'flock').map((l) => holderFromKernel(ctx, l));
  let fcntlList = listed.filter((l) => l.kind !== 'flock').map((l) => holderFromKernel(ctx, l));
  if (probed !== null) {
    if (probed.flock === 'free') {
      flockList = []; // released since /proc/locks was read
    } else if (probed.flock !== null && flockList.length === 0) {
      flockList = [holderFromProbe('flock', probed.flock, null, procLocksRead)];
    }
    if (probed.fcntl === null) {
      // Released since /proc/locks was read. F_GETLK, the fallback where OFD
      // locks do not exist, cannot see our own POSIX locks: keep those.
      fcntlList = native.ofdSupported ? [] : fcntlList.filter((h) => h.self);
    } else if (probed.fcntl !== undefined && fcntlList.length === 0) {
      const { pid, mode, range } = probed.fcntl;
      const holder = holderFromProbe(pid === -1 ? 'ofd' : 'posix', mode, pid, procLocksRead);
      if (pid > 0) {
        // F_GETLK named a visible pid /proc/locks had not listed yet.
        fcntlList = [holderFromKernel(ctx, { pid, kind: 'posix', mode, range, blocked: false })];
      } else {
        holder.range = range;
        if (pid === -1) holder.sameNamespace = null;
        fcntlList = [holder];
      }
    }
  }
  return [...flockList, ...fcntlList];
}

/** A file's inspection before descriptor holders are filled in. */
export interface PendingInspection {
  inspection: LockInspection;
  key: FileKey | null;
  /** Holders whose real processes should be looked up in fdinfo. */
  needDescriptors: LockHolder[];
}

function emptyInspection(display: string, exists: boolean, notes: string[] = []): LockInspection {
  return {
    path: display,
    exists,
    held: false,
    state: 'free',
    holders: [],
    waiters: 0,
    record: null,
    recordProcess: null,
    recordMatchesHolder: null,
    heldForMs: null,
    notes,
    lease: null,
  };
}

interface FileIdentity {
  dev: bigint;
  ino: bigint;
  key: FileKey;
  kernel: ProcLock[];
}

/** Probes a freshly opened descriptor, then closes it. */
function probeOpened(
  opened: { fd: number; dev: bigint; ino: bigint; regular: boolean },
  ctx: InspectContext,
  identity: FileIdentity,
): { result: ProbeResult; identity: FileIdentity } | 'not-regular' {
  try {
    if (!opened.regular) return 'not-regular';
    let current = identity;
    if (opened.dev !== identity.dev || opened.ino !== identity.ino) {
      // Replaced between lstat and open: describe the file we opened.
      const key = fileKey(opened.dev, opened.ino);
      current = { dev: opened.dev, ino: opened.ino, key, kernel: ctx.procLocks?.get(key) ?? [] };
    }
    const flockNamed = current.kernel.some((l) => l.kind === 'flock' && !l.blocked);
    return { result: probe(opened.fd, { flock: !flockNamed }), identity: current };
  } finally {
    closeProbe(opened.fd);
  }
}

/** Inspects one file against a context; descriptor holders are left for finishInspections(). */
export function inspectPending(pathInput: string | Buffer, ctx: InspectContext): PendingInspection {
  const { path, display } = normalizePath(pathInput);
  const st = lstatSync(path, { bigint: true, throwIfNoEntry: false });
  if (st === undefined) return { inspection: emptyInspection(display, false), key: null, needDescriptors: [] };
  if (!st.isFile()) {
    const what = st.isSymbolicLink() ? 'a symbolic link' : st.isDirectory() ? 'a directory' : 'not a regular file';
    return {
      inspection: emptyInspection(display, true, [`the path is ${what}; kernel-lock never locks through it`]),
      key: null,
      needDescriptors: [],
    };
  }
  const notes: string[] = [];
  let dev = st.dev;
  let ino = st.ino;
  let key = fileKey(dev, ino);
  const procLocksRead = ctx.procLocks !== null;
  if (!procLocksRead) notes.push('/proc/locks is not readable here: holders come from probing only, without pids');
  let kernel = ctx.procLocks?.get(key) ?? [];
  const selfKey = inodeKey(Number(dev), Number(ino));
  const me = pidInProc();
  const ownPosixFd = posixDescriptor(selfKey);
  const ownForeignPosix =
    ownPosixFd === undefined && kernel.some((l) => l.kind === 'posix' && !l.blocked && l.pid === me);

  let probed: ProbeResult | null = null;
  const flockNamed = kernel.some((l) => l.kind === 'flock' && !l.blocked);
  if (ownPosixFd !== undefined) {
    // Read through the descriptor kernel-lock already holds: closing any
    // other descriptor of this file would drop this process's POSIX locks.
    probed = probe(ownPosixFd, { flock: !flockNamed });
  } else if (ownForeignPosix) {
    notes.push(
      'this process holds a POSIX lock on the file by other means; it was not opened, because closing a descriptor would drop that lock',
    );
  } else {
    const opened = openForProbe(path);
    if (opened === null) return { inspection: emptyInspection(display, false), key: null, needDescriptors: [] };
    if (opened === 'denied') {
      notes.push('no permission to open the file: holders come from /proc/locks alone, and the record was not read');
    } else {
      const outcome = probeOpened(opened, ctx, { dev, ino, key, kernel });
      if (outcome === 'not-regular') {
        return {
          inspection: emptyInspection(display, true, ['the path is not a regular file']),
          key: null,
          needDescriptors: [],
        };
      }
      ({ dev, ino, key, kernel } = outcome.identity);
      probed = outcome.result;
    }
  }

  const holders = mergeHolders(ctx, kernel, probed);
  const held = holders.length > 0;
  const record = probed?.record ?? null;
  const inspection = emptyInspection(display, true, notes);
  inspection.held = held;
  inspection.holders = holders;
  inspection.waiters = kernel.filter((l) => l.blocked).length;
  inspection.record = record;
  inspection.recordProcess = recordProcess(record);
  inspection.lease = probed?.lease ? leaseView(probed.lease) : null;

  if (heldHere(inodeKey(Number(dev), Number(ino))) > 0) {
    // This thread holds a lock here, and the kernel does not name the holder
    // (OFD locks carry no pid; without /proc/locks nothing does). Without a
    // descriptor scan to tell our OFD locks from others', assume they are ours.
    for (const h of holders) {
      if ((h.pid === -1 && !ctx.descriptors) || (h.pid === null && !procLocksRead)) h.self = true;
    }
  }
  const needDescriptors = held
    ? holders.filter((h) => !h.self && (h.pid === -1 || (h.visible && h.alive === false)))
    : [];
  return { inspection, key, needDescriptors };
}

function matchesHolder(inspection: LockInspection): boolean | null {
  const { record, holders } = inspection;
  if (!inspection.held || record === null || record.pid === undefined) return null;
  const exclusive = currentLeaseHolder(inspection.lease, holders) ?? holders.find((h) => h.mode === 'exclusive');
  if (exclusive === undefined) return false; // shared holders write no record: it is an older holder's
  if (record.kind !== undefined && record.kind !== exclusive.kind) return false;
  const candidates: { pid: number; starttime: number | null }[] = [];
  if (exclusive.visible && exclusive.pid !== null) {
    candidates.push({ pid: exclusive.pidInNamespace ?? exclusive.pid, starttime: null });
  }
  for (const d of exclusive.descriptors ?? []) candidates.push({ pid: d.pid, starttime: null });
  if (candidates.length === 0) return null;
  if (!candidates.some((c) => c.pid === record.pid)) return false;
  if (exclusive.visible && exclusive.alive && exclusive.pid !== null && record.starttime !== undefined) {
    // The start time, in ticks since boot, is the same in every namespace.
    const info = processInfo(exclusive.pid);
    if (info.starttime !== null && record.pid === (exclusive.pidInNamespace ?? exclusive.pid)) {
      return info.starttime === record.starttime;
    }
  }
  return true;
}

function stateOf(inspection: LockInspection): LockState {
  if (inspection.held) return inspection.holders.every((h) => h.self) ? 'held-by-self' : 'held';
  if (inspection.exists && inspection.recordProcess?.alive === false) return 'orphan-record';
  return 'free';
}

/** Completes pending inspections: one fdinfo scan for all that need it, then states and ages. */
export function finishInspections(pending: PendingInspection[], ctx: InspectContext): LockInspection[] {
  const wanted = new Set<FileKey>();
  if (ctx.descriptors) {
    for (const p of pending) if (p.key !== null && p.needDescriptors.length > 0) wanted.add(p.key);
  }
  const found = wanted.size > 0 ? findDescriptorHolders(wanted) : null;
  const now = Date.now();
  return pending.map((p) => {
    const { inspection } = p;
    if (found !== null && p.key !== null) {
      const list = found.holders.get(p.key) ?? [];
      for (const h of p.needDescriptors) {
        h.descriptors = list
          .filter((d) => d.kind === h.kind && (d.start === undefined || d.start === h.range?.start))
          .map((d): DescriptorProcess => {
            const info = lookProcess(ctx, d.pid);
            return { pid: d.pid, alive: info.alive, argv: info.argv };
          });
        // fdinfo names processes, not the open file behind each lock, so
        // several OFD locks of one kind cannot be told apart: the lock is
        // ours only when every process holding such a lock is us.
        const me = pidInProc();
        if (h.pid === -1 && h.descriptors.length > 0 && h.descriptors.every((d) => d.pid === me)) h.self = true;
      }
      if (inspection.lease !== null) attachLeasePids(inspection.lease, list, (pid) => lookProcess(ctx, pid));
      if (!found.complete) inspection.notes.push('the descriptor scan of /proc was cut short (too many descriptors)');
    }
    inspection.recordMatchesHolder = matchesHolder(inspection);
    const created = inspection.record?.createdAt === undefined ? Number.NaN : Date.parse(inspection.record.createdAt);
    inspection.heldForMs =
      inspection.recordMatchesHolder === true && Number.isFinite(created) ? Math.max(0, now - created) : null;
    inspection.state = stateOf(inspection);
    return inspection;
  });
}

/** Synchronous inspect(). */
export function inspectSync(path: string | Buffer, options?: InspectOptions): LockInspection {
  const ctx = newContext(options);
  return finishInspections([inspectPending(path, ctx)], ctx)[0]!;
}

/**
 * Who holds the lock file at `path`, according to the kernel: its holders
 * (pid, kind, mode, alive, namespace), the owner record and whether it
 * matches, and a state (`free`, `held`, `held-by-self`, `orphan-record`).
 * Never creates, locks for longer than an instant, or modifies the file.
 */
export async function inspect(path: string | Buffer, options?: InspectOptions): Promise<LockInspection> {
  return inspectSync(path, options);
}
