// The kernel's own list of every file lock on the system, /proc/locks, and
// the device arithmetic needed to match its lines to a file we stat(). The
// list is the only place the kernel names lock holders by pid; it shows
// each holder's pid as seen from the pid namespace of the /proc mount, -1 for
// OFD locks (they belong to an open file, not a process), and omits locks of
// processes that namespace cannot see at all (Linux >= 4.14): such locks are
// found only by probing (see probe.ts).
import { readFileSync } from 'node:fs';

/** The kernel's kinds of advisory file lock: flock(2), open-file-description (OFD) and classic POSIX fcntl(2). */
export type LockKind = 'flock' | 'ofd' | 'posix';
/** Exclusive (one holder; "WRITE" in /proc/locks) or shared (many readers; "READ"). */
export type LockMode = 'exclusive' | 'shared';
/** A byte range of an fcntl lock; `length` 0 means "to the end of the file, however it grows". */
export interface LockRange {
  start: number;
  length: number;
}

/** One lock as /proc/locks lists it. */
export interface ProcLock {
  /** The kernel's pid for the holder (in the /proc mount's pid namespace); -1 for OFD locks. */
  pid: number;
  kind: LockKind;
  mode: LockMode;
  /** Byte range for fcntl locks (length 0 = to end of file); undefined for flock. */
  range: LockRange | undefined;
  /** True for a waiter line ("->"): a process blocked on the lock, not a holder. */
  blocked: boolean;
}

/** "major:minor:inode" with major and minor in decimal: the key /proc/locks lines and stat() results share. */
export type FileKey = string;

/** Parsed /proc/locks, grouped by file. */
export type ProcLocks = Map<FileKey, ProcLock[]>;

const KIND_BY_NAME: Record<string, LockKind> = { FLOCK: 'flock', OFDLCK: 'ofd', POSIX: 'posix' };

/** The key for a device number as stat() reports it (Linux's user-space dev_t encoding) and an inode. */
export function fileKey(dev: bigint, ino: bigint): FileKey {
  // glibc's gnu_dev_major/gnu_dev_minor: 12+ bits of major and 20+ bits of
  // minor are interleaved in the 64-bit value.
  // The masks are bounded to 32 bits as in glibc: an unbounded ~0xff would
  // pull the major's high bits into the minor.
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n);
  const minor = (dev & 0xffn) | ((dev >> 12n) & 0xffffff00n);
  return `${major}:${minor}:${ino}`;
}

/** Parses one "MAJ:MIN:INODE" field of /proc/locks (major and minor in hex); null for "<none>:0". */
export function parseDeviceInode(field: string): FileKey | null {
  const match = /^([0-9a-f]+):([0-9a-f]+):(\d+)$/i.exec(field);
  if (match === null) return null;
  return `${BigInt(`0x${match[1]}`)}:${BigInt(`0x${match[2]}`)}:${BigInt(match[3]!)}`;
}

/**
 * Parses one line, e.g. `1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF`,
 * `2: OFDLCK ADVISORY  READ  -1 00:2e:123 0 EOF`, `3: POSIX  ADVISORY  WRITE
 * 99 08:02:1234 0 100` or a waiter `1: -> FLOCK ...`. Returns null for lines
 * that are not flock/OFD/POSIX locks (leases, delegations, garbage).
 */
export function parseProcLocksLine(line: string): { key: FileKey; lock: ProcLock } | null {
  const tokens = line.trim().split(/\s+/);
  if (tokens.length < 2 || !/^\d+:$/.test(tokens[0]!)) return null;
  let index = 1;
  const blocked = tokens[index] === '->';
  if (blocked) index++;
  const [type, , access, pidText, deviceInode, startText, endText] = tokens.slice(index);
  const kind = type === undefined ? undefined : KIND_BY_NAME[type];
  if (kind === undefined || deviceInode === undefined || endText === undefined) return null;
  if (access !== 'WRITE' && access !== 'READ') return null;
  const pid = Number(pidText);
  const key = parseDeviceInode(deviceInode);
  if (!Number.isSafeInteger(pid) || key === null) return null;
  let range: LockRange | undefined;
  if (kind !== 'flock') {
    const start = Number(startText);
    const end = endText === 'EOF' ? null : Number(endText);
    if (!Number.isSafeInteger(start) || (end !== null && !Number.isSafeInteger(end))) return null;
    range = { start, length: end === null ? 0 : end - start + 1 };
  }
  return { key, lock: { pid, kind, mode: access === 'WRITE' ? 'exclusive' : 'shared', range, blocked } };
}

/** Parses the whole text of /proc/locks. */
export function parseProcLocks(text: string): ProcLocks {
  const locks: ProcLocks = new Map();
  for (const line of text.split('\n')) {
    const parsed = parseProcLocksLine(line);
    if (parsed === null) continue;
    const list = locks.get(parsed.key);
    if (list === undefined) locks.set(parsed.key, [parsed.lock]);
    else list.push(parsed.lock);
  }
  return locks;
}

/** Reads /proc/locks once; null where it does not exist or cannot be read (not Linux, no /proc). */
export function readProcLocks(): ProcLocks | null {
  if (process.platform !== 'linux') return null;
  try {
    return parseProcLocks(readFileSync('/proc/locks', 'latin1'));
  } catch {
    return null;
  }
}
