// Every error kernel-lock raises: the timeout error, Node-style abort errors,
// and system errors in Node's own shape (code, errno, syscall, path) with a
// message that also says what to do about it.
import os from 'node:os';
import util from 'node:util';
import type { HolderSnapshot } from './holder-snapshot.js';

/** Error code of LockTimeoutError. */
export const ELOCKED = 'ELOCKED';

/** The lock was still held by someone else when the timeout expired. */
export class LockTimeoutError extends Error {
  override readonly name = 'LockTimeoutError';
  readonly code = ELOCKED;
  /** The lock file. */
  readonly path: string;
  /** How long the acquisition waited, in milliseconds. */
  readonly waitedMs: number;
  /**
   * Who held the lock when the wait gave up, from the kernel (pid, alive,
   * namespace, command line) and the owner record when it is the holder's;
   * null if it could not be looked at. Gathered at a bounded cost: inspect()
   * tells the whole story (waiters, the record's own process, a full search
   * of the host's descriptors).
   */
  readonly holder: HolderSnapshot | null;

  constructor(path: string, waitedMs: number, detail: string, holder: HolderSnapshot | null = null) {
    super(`lock busy after ${Math.round(waitedMs)} ms: ${path}${detail ? ` ${detail}` : ''}`);
    this.path = path;
    this.waitedMs = waitedMs;
    this.holder = holder;
  }
}

/** Node's convention for aborted operations: name AbortError, code ABORT_ERR, cause = the signal's reason. */
export class AbortError extends Error {
  override readonly name = 'AbortError';
  readonly code = 'ABORT_ERR';
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** Creates the error for an aborted wait on `path`. */
export function abortError(signal: AbortSignal, path: string): AbortError {
  return new AbortError(`The lock acquisition was aborted: ${path}`, { cause: signal.reason });
}

/** A Node-shaped system error. */
export interface SystemError extends Error {
  code: string;
  errno: number;
  syscall: string;
  path: string;
  /** Set when the lock path holds something other than a regular file. */
  fileType?: string;
}

/** Raised by the native layer: errno is negative, as in Node. */
interface NativeError extends Error {
  errno?: number;
  syscall?: string;
  fileType?: string;
}

function hintFor(code: string, syscall: string, fileType: string | undefined): string {
  switch (code) {
    case 'ELOOP':
      return 'the lock path is a symbolic link; kernel-lock never follows a link at the lock path (O_NOFOLLOW). Remove the link or lock the real path';
    case 'EINVAL':
      return fileType
        ? `the lock path is a ${fileType}, not a regular file; remove it or choose another path`
        : 'the kernel rejected the request';
    case 'ENXIO':
      return 'the lock path is a socket or a device without a driver, not a regular file; remove it or choose another path';
    case 'EISDIR':
      return 'the lock path is a directory; lock a file inside it instead';
    case 'ENOENT':
      return syscall === 'open'
        ? 'its directory does not exist; kernel-lock does not create directories, so create it first (fs.mkdirSync(dir, { recursive: true }))'
        : 'the file disappeared';
    case 'ENOTDIR':
      return 'a component of the path is not a directory';
    case 'EACCES':
    case 'EPERM':
      return 'no permission to create or open the lock file; make its directory writable, create the file in advance, or choose another directory';
    case 'EROFS':
      return 'the file system is read-only and the lock file does not exist; create it in advance or choose a writable directory';
    case 'EBADF':
      return syscall === 'fcntl'
        ? "the file could only be opened read-only and fcntl exclusive locks need write access; use kind 'flock' or make the file writable"
        : 'bad file descriptor (was the handle already released?)';
    case 'EMFILE':
    case 'ENFILE':
      return 'too many open files: every held lock keeps one descriptor open; release locks or raise the limit (ulimit -n)';
    case 'ENAMETOOLONG':
      return 'the path is too long for the file system';
    case 'ENOLCK':
      return 'the kernel or file system refused the lock (out of lock records, or a network file system without lock support)';
    case 'EDEADLK':
      return 'waiting would deadlock';
    case 'EAGAIN':
      return syscall === 'pthread_create' ? 'the system is out of threads' : 'try again';
    default:
      return '';
  }
}

const EXTRA_DESCRIPTIONS: Record<string, string> = {
  EDEADLK: 'resource deadlock avoided',
  ENOLCK: 'no locks available',
};

/** Builds a Node-shaped system error for `errno` (positive or negative) on `path`. */
export function systemError(errno: number, syscall: string, path: string, fileType?: string): SystemError {
  const negative = -Math.abs(errno);
  let code = `E${Math.abs(errno)}`;
  let description = 'unknown error';
  const entry = util.getSystemErrorMap().get(negative);
  if (entry) {
    [code, description] = entry;
  } else {
    // libuv's table lacks a few lock-related codes (EDEADLK, ENOLCK).
    const name = Object.entries(os.constants.errno).find(([, value]) => value === Math.abs(errno))?.[0];
    if (name !== undefined) code = name;
    description = EXTRA_DESCRIPTIONS[code] ?? description;
  }
  const hint = hintFor(code, syscall, fileType);
  const error = new Error(`${code}: ${description}, ${syscall} '${path}'${hint ? ` (${hint})` : ''}`) as SystemError;
  error.code = code;
  error.errno = negative;
  error.syscall = syscall;
  error.path = path;
  if (fileType !== undefined) error.fileType = fileType;
  return error;
}

/** Converts an error thrown by the addon into a system error for `path`; passes other errors through. */
export function fromNative(error: unknown, path: string): unknown {
  const native = error as NativeError;
  if (native instanceof Error && typeof native.errno === 'number' && typeof native.syscall === 'string') {
    const converted = systemError(native.errno, native.syscall, path, native.fileType);
    Error.captureStackTrace?.(converted, fromNative);
    return converted;
  }
  return error;
}

/** An EDEADLK error for a synchronous wait on a lock this thread itself holds. */
export function selfDeadlockError(path: string): SystemError {
  const error = systemError(os.constants.errno.EDEADLK, 'flock', path);
  error.message =
    `EDEADLK: resource deadlock avoided, lockSync '${path}' (this thread already holds a conflicting lock on it, ` +
    'and a synchronous wait would block the only thread that can release it; release it first or use lock())';
  return error;
}
