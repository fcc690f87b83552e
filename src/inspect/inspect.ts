// inspect(): who holds a lock file, from the kernel. The look at each file
// is the lock layer's (lock/holder-look.ts: /proc/locks, a probe, the owner
// record, merged), so an inspection and a timeout message never disagree;
// an inspection adds what a timeout does not need to pay for: the waiters,
// a search of every descriptor on the host for the processes behind OFD and
// inherited locks, and whether the record's own process still lives.
//
// Every /proc read is a step (proc/steps.ts): inspect() makes them off the
// event loop and slices the rest, so it never blocks the loop for more than
// about a millisecond however many locks the host holds; inspectSync() runs
// the very same steps inline.
import { lstatSync } from 'node:fs';
import { finishLooks, type Look, lookAt, newLookContext, stateOf } from '../lock/holder-look.js';
import { normalizePath } from '../lock/options.js';
import { recordProcess } from '../lock/record-process.js';
import { MAX_FDINFO_READS } from '../proc/descriptors.js';
import { type FileKey, fileKey } from '../proc/proc-locks.js';
import { checkpoint, runAsync, runSync, type Steps } from '../proc/steps.js';
import type { LockInspection } from './types.js';

/** Options of inspect() and scan(). */
export interface InspectOptions {
  /**
   * Look through /proc/<pid>/fdinfo for the real holders of OFD locks and of
   * flock locks whose taker has exited (default true). Costs one read per open
   * descriptor on the host, bounded (20,000), off the event loop in inspect().
   */
  descriptors?: boolean;
}

/** The keys of the regular files among `paths`, so that one /proc/locks read serves them all. */
function* keysOf(paths: readonly (string | Buffer)[]): Steps<FileKey[]> {
  const keys: FileKey[] = [];
  for (const input of paths) {
    try {
      const st = lstatSync(normalizePath(input).path, { bigint: true, throwIfNoEntry: false });
      if (st?.isFile()) keys.push(fileKey(st.dev, st.ino));
    } catch {
      // lookAt() reports it
    }
    yield* checkpoint();
  }
  return keys;
}

function inspectionOf(look: Look, recordView: LockInspection['recordProcess']): LockInspection {
  const s = look.snapshot;
  // The order of the fields is the order of `status --json`.
  return {
    path: s.path,
    ...(s.pathBytes === undefined ? {} : { pathBytes: s.pathBytes }),
    exists: s.exists,
    held: s.held,
    state: stateOf(s, recordView?.alive),
    holders: s.holders,
    waiters: look.kernel.filter((l) => l.blocked).length,
    record: s.record,
    recordProcess: recordView,
    recordMatchesHolder: s.recordMatchesHolder,
    heldForMs: s.heldForMs,
    notes: s.notes,
    lease: s.lease,
  };
}

/** Inspects files against one context: one /proc/locks read, one descriptor search, one look at each process. */
export function* inspectSteps(
  paths: readonly (string | Buffer)[],
  options: InspectOptions = {},
): Steps<LockInspection[]> {
  for (const input of paths) normalizePath(input); // bad input fails before anything is read
  const ctx = newLookContext();
  yield* ctx.kernel.load(yield* keysOf(paths));
  const looks: Look[] = [];
  for (const input of paths) looks.push(yield* lookAt(input, ctx));
  const search = options.descriptors ?? true;
  // The process an owner record names is searched first: on a host with more
  // descriptors than the bound, a kernel-lock holder is still named.
  yield* finishLooks(looks, ctx, { search, recordFirst: true, limits: { maxDescriptors: MAX_FDINFO_READS } });
  const inspections: LockInspection[] = [];
  for (const look of looks)
    inspections.push(inspectionOf(look, yield* recordProcess(look.snapshot.record, ctx.processes)));
  return inspections;
}

/** Synchronous inspect(). */
export function inspectSync(path: string | Buffer, options?: InspectOptions): LockInspection {
  return runSync(inspectSteps([path], options))[0]!;
}

/**
 * Who holds the lock file at `path`, according to the kernel: its holders
 * (pid, kind, mode, alive, namespace), the owner record and whether it
 * matches, and a state (`free`, `held`, `held-by-self`, `orphan-record`).
 * Never creates, locks for longer than an instant, or modifies the file.
 * Every /proc read happens off the event loop.
 */
export async function inspect(path: string | Buffer, options?: InspectOptions): Promise<LockInspection> {
  return (await runAsync(inspectSteps([path], options)))[0]!;
}

/** inspect() of several files at once, sharing one /proc/locks read (scan() and `kernel-lock status`). */
export function inspectMany(paths: readonly (string | Buffer)[], options?: InspectOptions): Promise<LockInspection[]> {
  return runAsync(inspectSteps(paths, options));
}
