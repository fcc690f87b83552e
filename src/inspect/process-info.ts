// What /proc says about a process the kernel named as a lock holder, and
// whether a pid written in an owner record may be checked at all. A pid is
// only meaningful inside its own pid namespace: a record written in another
// container names a process we cannot see, and probing that number here
// would test an unrelated process of ours.
import { readFileSync, readlinkSync } from 'node:fs';
import { processIdentity, readStartTime } from '../identity.js';
import type { OwnerRecord } from '../owner-record.js';

/** A live look at one process through /proc. */
export interface ProcessInfo {
  pid: number;
  /** False when the process is gone or a zombie (a zombie holds no descriptors). */
  alive: boolean;
  /** Start time in clock ticks since boot; null when unreadable. */
  starttime: number | null;
  /** Its command line; null when unreadable. */
  argv: string[] | null;
  /** Its /proc/<pid>/ns/pid link; null when unreadable (permissions, not Linux). */
  pidNamespace: string | null;
  /** Its pid in each pid namespace from /proc's down to its own (the NSpid line); null when unreadable. */
  nspid: number[] | null;
}

function readOr<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

/** Field 3 of /proc/<pid>/stat ("R", "S", "Z", ...); null when the process is gone. */
function processState(pid: number): string | null {
  return readOr(() => {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  }, null);
}

const MAX_CMDLINE_BYTES = 4096;

/** Reads /proc/<pid>: only for pids the kernel itself reported in our /proc's namespace. */
export function processInfo(pid: number): ProcessInfo {
  const state = processState(pid);
  if (state === null || state === 'Z' || state === 'X') {
    return { pid, alive: false, starttime: null, argv: null, pidNamespace: null, nspid: null };
  }
  const argv = readOr(() => {
    const raw = readFileSync(`/proc/${pid}/cmdline`, 'utf8').slice(0, MAX_CMDLINE_BYTES);
    const parts = raw.split('\0');
    if (parts.at(-1) === '') parts.pop();
    return parts.length > 0 ? parts : null;
  }, null);
  const nspid = readOr(() => {
    const line = readFileSync(`/proc/${pid}/status`, 'latin1')
      .split('\n')
      .find((l) => l.startsWith('NSpid:'));
    return line === undefined ? null : line.slice(6).trim().split(/\s+/).map(Number);
  }, null);
  return {
    pid,
    alive: true,
    starttime: readStartTime(pid),
    argv,
    pidNamespace: readOr(() => readlinkSync(`/proc/${pid}/ns/pid`), null),
    nspid,
  };
}

let procSelf: number | null | undefined;
let procSelfFor = 0;

/**
 * Our pid as /proc sees it. It differs from process.pid when /proc was
 * mounted for another pid namespace (a container started with
 * `unshare --pid` but without a fresh /proc): the pids in /proc/locks are
 * then /proc's, and "is it us?" must compare against this one.
 */
export function pidInProc(): number | null {
  if (procSelf === undefined || procSelfFor !== process.pid) {
    procSelfFor = process.pid;
    procSelf = process.platform === 'linux' ? readOr(() => Number(readlinkSync('/proc/self')), null) : null;
  }
  return procSelf;
}

/** Our pid namespace link ("pid:[4026531836]"), or null off Linux. */
export function ownPidNamespace(): string | null {
  return processIdentity().pidNamespace;
}

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
export function recordProcess(record: OwnerRecord | null): RecordProcess | null {
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
    const info = processInfo(record.pid);
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
