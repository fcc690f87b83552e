// Asking the kernel directly whether a file is locked, through a descriptor
// of our own: F_OFD_GETLK for fcntl locks (a pure query), and a non-blocking
// flock() for flock locks (the kernel has no query for those, so the probe
// takes the lock for an instant and drops it). This sees what /proc/locks
// cannot: locks of processes in pid namespaces /proc cannot see, and locks on
// file systems whose stat() device differs from the kernel's (btrfs
// subvolumes).
import { fstatSync, readSync } from 'node:fs';
import { constants } from 'node:os';
import { Flag, native } from '../native/binding.js';
import { type LeaseProbe, probeLease } from './lease-view.js';
import type { LockMode, LockRange } from './options.js';
import { MAX_RECORD_BYTES, type OwnerRecord, parseRecord } from './owner-record.js';
import { closeReader, openReader, openReaderError } from './reader.js';

/** A conflicting fcntl lock as F_OFD_GETLK / F_GETLK reports it. */
export interface FcntlConflict {
  mode: LockMode;
  /** -1 for an OFD lock, 0 when the holder is not visible from our pid namespace, else its pid. */
  pid: number;
  range: LockRange;
}

/** What one descriptor-based probe found. */
export interface ProbeResult {
  /** 'free', or the mode of the flock holders; null when flock could not be probed. */
  flock: 'free' | LockMode | null;
  /** null when free; undefined when fcntl locks could not be probed. */
  fcntl: FcntlConflict | null | undefined;
  /** The owner record read through the same descriptor. */
  record: OwnerRecord | null;
  /** The lease the file carries, or null. */
  lease: LeaseProbe | null;
}

/** Opens an existing file for probing; null when it is gone, 'denied' when we may not read it. Other errors throw. */
export function openForProbe(
  path: string | Buffer,
): { fd: number; dev: bigint; ino: bigint; regular: boolean } | 'denied' | null {
  // Read-only: never create (an inspection must not leave a file behind),
  // and flock needs no write access. O_NOFOLLOW and O_NONBLOCK for the same
  // reasons as the lock itself: no symlink redirection, no hanging on a FIFO.
  // Opened and closed by the addon (reader.ts).
  const fd = openReader(path);
  if (fd < 0) {
    if (fd === -constants.errno.ENOENT) return null;
    if (fd === -constants.errno.EACCES || fd === -constants.errno.EPERM) return 'denied';
    throw openReaderError(fd, path);
  }
  try {
    const st = fstatSync(fd, { bigint: true });
    return { fd, dev: st.dev, ino: st.ino, regular: st.isFile() };
  } catch (error) {
    closeReader(fd);
    throw error;
  }
}

/** Closes a descriptor from openForProbe (without dropping a posix lock of this process). */
export function closeProbe(fd: number): void {
  closeReader(fd);
}

function probeFlock(fd: number): 'free' | LockMode | null {
  try {
    if (native.tryLock(fd, Flag.flock, 0, 0)) {
      native.unlock(fd, Flag.flock, 0, 0);
      return 'free';
    }
    // Someone holds it. A shared attempt tells their mode, and is harmless:
    // while they hold it, no exclusive acquirer could get in anyway.
    if (native.tryLock(fd, Flag.flock | Flag.shared, 0, 0)) {
      native.unlock(fd, Flag.flock, 0, 0);
      return 'shared';
    }
    return 'exclusive';
  } catch {
    return null;
  }
}

function probeFcntl(fd: number): FcntlConflict | null | undefined {
  try {
    // F_OFD_GETLK on a descriptor of our own sees every fcntl lock, this
    // process's POSIX locks included (their owner is the process, ours the
    // open file). F_GETLK, the fallback, cannot see our own POSIX locks.
    const kind = native.ofdSupported ? Flag.ofd : Flag.posix;
    const conflict = native.getLock(fd, kind, 0, 0);
    if (conflict === null) return null;
    const [exclusive, pid, start, length] = conflict;
    return { mode: exclusive === 1 ? 'exclusive' : 'shared', pid, range: { start, length } };
  } catch {
    return undefined;
  }
}

/** The owner record read through `fd` (bounded, from offset 0); null when absent or not a record. */
export function readRecordFrom(fd: number): OwnerRecord | null {
  try {
    const buffer = Buffer.alloc(MAX_RECORD_BYTES);
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    return parseRecord(buffer.subarray(0, length));
  } catch {
    return null;
  }
}

/**
 * Probes through `fd`. `flock` false skips the flock probe (when /proc/locks
 * already named a flock holder there is nothing to learn, and the probe is
 * the one intrusive step).
 */
export function probe(fd: number, options: { flock: boolean }): ProbeResult {
  return {
    flock: options.flock ? probeFlock(fd) : null,
    fcntl: probeFcntl(fd),
    record: readRecordFrom(fd),
    lease: probeLease(fd),
  };
}
