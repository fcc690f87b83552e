// What /proc says about a process the kernel named as a lock holder: alive
// or not, its start time, command line and pid namespace, and our own pid as
// /proc sees it (not always process.pid).
import { readlinkSync } from 'node:fs';
import { parseStat, processIdentity } from './identity.js';
import { readFile, readFiles, readLink, runSync, type Steps } from './steps.js';

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

const MAX_STAT_BYTES = 1024;
const MAX_CMDLINE_BYTES = 4096;
const MAX_STATUS_BYTES = 8192;

function parseCmdline(raw: Buffer | null): string[] | null {
  if (raw === null) return null;
  const parts = raw.toString('utf8').split('\0');
  if (parts.at(-1) === '') parts.pop();
  return parts.length > 0 ? parts : null;
}

function parseNspid(status: Buffer | null): number[] | null {
  if (status === null) return null;
  const line = status
    .toString('latin1')
    .split('\n')
    .find((l) => l.startsWith('NSpid:'));
  return line === undefined ? null : line.slice(6).trim().split(/\s+/).map(Number);
}

/**
 * Reads /proc/<pid> (only for pids the kernel itself reported in our
 * /proc's namespace): four small reads, as steps (see steps.ts).
 */
export function* lookAtProcess(pid: number): Steps<ProcessInfo> {
  const stat = yield* readFile(`/proc/${pid}/stat`, MAX_STAT_BYTES);
  const { state, starttime } = stat === null ? { state: null, starttime: null } : parseStat(stat.toString('latin1'));
  if (state === null || state === 'Z' || state === 'X') {
    return { pid, alive: false, starttime: null, argv: null, pidNamespace: null, nspid: null };
  }
  const [cmdline, status] = yield* readFiles([`/proc/${pid}/cmdline`, `/proc/${pid}/status`], MAX_STATUS_BYTES);
  return {
    pid,
    alive: true,
    starttime,
    argv: parseCmdline(cmdline?.subarray(0, MAX_CMDLINE_BYTES) ?? null),
    pidNamespace: yield* readLink(`/proc/${pid}/ns/pid`),
    nspid: parseNspid(status ?? null),
  };
}

/** Synchronous lookAtProcess(). */
export function processInfo(pid: number): ProcessInfo {
  return runSync(lookAtProcess(pid));
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
