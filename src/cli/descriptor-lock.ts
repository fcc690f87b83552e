// Locking a descriptor that is already open: the FD form (`kernel-lock -n 9`
// inside `( … ) 9>file`, where the shell opened the file and the lock
// belongs to that open file, so it outlives kernel-lock) and a directory as
// the lock target (opened read-only, as flock(1) does). No owner record is
// written: the shell's file is the shell's, and a directory has no content.
// The wait is the library's own: a dedicated thread asleep in the kernel,
// interrupted at the deadline; a timeout names the holder.
import { readlinkSync, statSync } from 'node:fs';
import { kernelWait, timeoutError } from '../lock/acquire-steps.js';
import { fromNative } from '../lock/errors.js';
import { type LockRequest, normalizeOptions } from '../lock/options.js';
import { Flag, native } from '../native/binding.js';

/** What to take on the descriptor. */
export interface DescriptorLock {
  kind: 'flock' | 'ofd';
  mode: 'exclusive' | 'shared';
  /** Milliseconds; 0 = one attempt, Infinity = wait forever. */
  timeoutMs: number;
}

/**
 * The file behind `fd`, for messages and for naming the holder: the path
 * /proc gives for it when that path still names the same file, else the
 * /proc link itself.
 */
export function descriptorPath(fd: number): string {
  const link = `/proc/self/fd/${fd}`;
  try {
    const target = readlinkSync(link);
    const behind = statSync(link);
    const named = statSync(target, { throwIfNoEntry: false });
    if (target.startsWith('/') && named !== undefined && named.ino === behind.ino && named.dev === behind.dev) {
      return target;
    }
  } catch {
    // not a path (a pipe, a socket) or not reachable: the link names it
  }
  return link;
}

function requestFor(fd: number, path: string, lock: DescriptorLock): LockRequest {
  const req = normalizeOptions(path, { kind: lock.kind, mode: lock.mode, timeout: lock.timeoutMs }, 0);
  req.display = path.startsWith('/proc/self/fd/') ? `descriptor ${fd}` : `${path} (descriptor ${fd})`;
  return req;
}

/**
 * Locks the open descriptor `fd` (naming `path` in messages). Resolves once
 * locked; rejects with LockTimeoutError when busy past the timeout, or with
 * a system error naming `path`.
 */
export async function lockDescriptor(fd: number, path: string, lock: DescriptorLock): Promise<void> {
  const req = requestFor(fd, path, lock);
  const started = performance.now();
  try {
    if (native.tryLock(fd, req.flags, 0, 0)) return;
  } catch (error) {
    throw fromNative(error, req.display);
  }
  if (req.timeout === 0) throw await timeoutError(req, started);
  await kernelWait(req, fd, started, () => unlockDescriptor(fd, lock.kind));
}

/** Drops this open file's lock of `kind` (flock(1) -u). */
export function unlockDescriptor(fd: number, kind: 'flock' | 'ofd'): void {
  try {
    native.unlock(fd, Flag[kind], 0, 0);
  } catch (error) {
    throw fromNative(error, `descriptor ${fd}`);
  }
}
