// The head of a lock file, read the way every judge of a claim must read it:
// without following a link at the lock path (O_NOFOLLOW) and without
// blocking on a FIFO put there (O_NONBLOCK), and only when it is a regular,
// non-empty file. What a stale policy is shown comes from here.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** The first bytes of a regular, non-empty lock file, and its mtime. */
export interface LockFileHead {
  bytes: Buffer;
  mtimeMs: number;
}

const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/**
 * Reads at most `limit` bytes from the start of `lockPath`; null when it is
 * missing, a link, not a regular file, empty, larger than `maxSize`, or
 * unreadable (a claim that cannot be read is no claim).
 */
export function readLockFileHead(
  lockPath: string,
  limit: number,
  maxSize = Number.POSITIVE_INFINITY,
): LockFileHead | null {
  let fd: number;
  try {
    fd = openSync(lockPath, READ_FLAGS);
  } catch {
    return null;
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile() || stat.size === 0 || stat.size > maxSize) return null;
    const buffer = Buffer.alloc(Math.min(stat.size, limit));
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    return { bytes: buffer.subarray(0, length), mtimeMs: stat.mtimeMs };
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}
