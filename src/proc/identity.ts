// Who this process is, as far as an owner record can say: the fields let a
// reader tell a live holder from a recycled pid (start time), another boot
// (boot id) or another container (pid namespace, host name).
import { readFileSync, readlinkSync } from 'node:fs';
import os from 'node:os';
import { isMainThread, threadId } from 'node:worker_threads';

export interface ProcessIdentity {
  pid: number;
  /** Start time in clock ticks since boot (/proc/<pid>/stat field 22); null off Linux. */
  starttime: number | null;
  hostname: string;
  bootId: string | null;
  /** The /proc/self/ns/pid link, e.g. "pid:[4026531836]". */
  pidNamespace: string | null;
  argv: string[];
  threadId: number | null;
}

const MAX_ARGS = 16;
const MAX_ARG_LENGTH = 200;

/** Field 3 (state: "R", "S", "Z", ...) and field 22 (starttime) of a /proc/<pid>/stat text. */
export function parseStat(stat: string): { state: string | null; starttime: number | null } {
  // The command name (field 2) may contain spaces and parentheses: split
  // after its closing parenthesis, where field 3 starts.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const starttime = Number(fields[19]);
  return { state: fields[0] || null, starttime: Number.isSafeInteger(starttime) ? starttime : null };
}

/** Reads field 22 (starttime) of /proc/<pid>/stat; null when unreadable. */
export function readStartTime(pid: number | 'self'): number | null {
  try {
    return parseStat(readFileSync(`/proc/${pid}/stat`, 'latin1')).starttime;
  } catch {
    return null;
  }
}

function readOr<T>(read: () => T, fallback: T): T {
  try {
    return read();
  } catch {
    return fallback;
  }
}

/** Truncated command line: enough to recognise a process, bounded in size. */
export function truncatedArgv(argv: readonly string[]): string[] {
  return argv
    .slice(0, MAX_ARGS)
    .map((arg) => (arg.length > MAX_ARG_LENGTH ? `${arg.slice(0, MAX_ARG_LENGTH - 1)}…` : arg));
}

let cached: ProcessIdentity | undefined;

/** This process's identity, computed once. */
export function processIdentity(): ProcessIdentity {
  if (cached && cached.pid === process.pid) return cached;
  cached = {
    pid: process.pid,
    starttime: readStartTime('self'),
    hostname: os.hostname(),
    bootId: readOr(() => readFileSync('/proc/sys/kernel/random/boot_id', 'latin1').trim(), null),
    pidNamespace: readOr(() => readlinkSync('/proc/self/ns/pid'), null),
    argv: truncatedArgv(process.argv),
    threadId: isMainThread ? null : threadId,
  };
  return cached;
}
