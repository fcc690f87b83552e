// Whether the pid written in an owner record may be checked at all, and if
// so whether that process still lives. A pid is only meaningful inside its
// own pid namespace on its own boot: a record written in another container
// names a process we cannot see, and probing that number here would test an
// unrelated process of ours.

import type { ProcessLookups } from '../proc/holders.js';
import { processIdentity } from '../proc/identity.js';
import { pidInProc } from '../proc/process-info.js';
import type { Steps } from '../proc/steps.js';
import type { OwnerRecord } from './owner-record.js';

/** Whether a record's pid can be looked up here, and if not, why. */
export type RecordScope = 'here' | 'other-namespace' | 'other-boot' | 'other-host' | 'unknown';

/**
 * Decides whether the pid in `record` is a pid of OUR namespace on OUR boot.
 * Records written by kernel-lock say so exactly; legacy markers carry no
 * namespace, and are assumed local only when nothing they carry contradicts it.
 */
export function recordScope(record: OwnerRecord): RecordScope {
  const me = processIdentity();
  if (record.bootId !== undefined && me.bootId !== null && record.bootId !== me.bootId) {
    return record.hostname !== undefined && record.hostname !== me.hostname ? 'other-host' : 'other-boot';
  }
  if (record.pidNamespace !== undefined) {
    if (me.pidNamespace === null) return 'unknown';
    return record.pidNamespace === me.pidNamespace ? 'here' : 'other-namespace';
  }
  // A legacy marker ({pid, createdAt, starttime}): the legacy runtime ran in
  // the same container as its successors; a hostname, when present, must agree.
  if (record.hostname !== undefined && record.hostname !== me.hostname) return 'other-host';
  return 'here';
}

/** Liveness of a record's process, checked only when its pid belongs to our namespace. */
export interface RecordProcess {
  pid: number;
  scope: RecordScope;
  /** null when it cannot be known from here (another namespace, boot or host). */
  alive: boolean | null;
  /** True when the pid is alive but its start time differs from the record's: a recycled pid. */
  recycled: boolean;
}

/** Looks up the record's pid, never touching a pid from another namespace. */
export function* recordProcess(record: OwnerRecord | null, processes: ProcessLookups): Steps<RecordProcess | null> {
  if (record === null || record.pid === undefined || record.pid <= 0) return null;
  const scope = recordScope(record);
  if (scope !== 'here') {
    // A different boot means that process is certainly gone, but only if it
    // was on this host; for another host or namespace we cannot know.
    return { pid: record.pid, scope, alive: scope === 'other-boot' ? false : null, recycled: false };
  }
  // /proc names pids of its own namespace; if that is not ours the number
  // means something else there, so make no claim.
  if (process.platform === 'linux' && pidInProc() !== process.pid) {
    return { pid: record.pid, scope: 'unknown', alive: null, recycled: false };
  }
  let alive: boolean;
  let starttime: number | null = null;
  if (process.platform === 'linux') {
    const info = yield* processes.of(record.pid);
    alive = info.alive;
    starttime = info.starttime;
  } else {
    alive = signalProbe(record.pid);
  }
  const recycled = alive && record.starttime !== undefined && starttime !== null && starttime !== record.starttime;
  return { pid: record.pid, scope, alive: alive && !recycled, recycled };
}

function signalProbe(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
