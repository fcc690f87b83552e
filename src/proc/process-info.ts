// What /proc says about a process the kernel named as a lock holder: alive
// or not, its start time, command line and pid namespace, and our own pid as
// /proc sees it (not always process.pid).
import { readFileSync, readlinkSync } from 'node:fs';
import { processIdentity, readStartTime } from './identity.js';

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
