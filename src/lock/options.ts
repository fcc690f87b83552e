// Validation of every public option, done before anything touches the disk:
// a bad call fails with a TypeError or RangeError naming the option, the
// value and what is accepted.
import path from 'node:path';
import { Flag, native } from '../native/binding.js';
import type { LockKind, LockMode, LockRange } from '../proc/proc-locks.js';

// The kernel's own vocabulary (kinds, modes, ranges) is defined once, by the
// layer that reads the kernel's lock table.
export type { LockKind, LockMode, LockRange };

/** Options of lock(), tryLock(), lockSync() and withLock(). */
export interface LockOptions {
  /** Default 'exclusive'. */
  mode?: LockMode;
  /** Default 'flock'. */
  kind?: LockKind;
  /** Milliseconds to wait; Infinity (default for lock/lockSync) waits forever, 0 makes one attempt. */
  timeout?: number;
  /** Aborts a pending wait; the promise rejects with an AbortError. */
  signal?: AbortSignal;
  /** Free-text label stored in the owner record (cut at 256 characters). */
  owner?: string;
  /** Byte range (ofd and posix only). Default: the whole file. */
  range?: LockRange;
  /**
   * Unlink the lock file on release when this is the last holder. Default
   * false: the file is kept. Unlinking is safe only when every process that
   * locks the path re-checks the inode after locking, as kernel-lock does;
   * flock(1), Python's fcntl.flock/lockf, lockf(3) and SQLite do not, and a
   * waiter of theirs would end up holding a lock on the unlinked file while
   * the next kernel-lock user locks a new one. A file with foreign content
   * (not an owner record) is never unlinked.
   */
  removeOnRelease?: boolean;
}

/** Options after validation, in the shape the acquisition code uses. */
export interface LockRequest {
  /** Absolute path (relative paths are resolved once, at acquisition). */
  path: string | Buffer;
  /** The path for messages. */
  display: string;
  kind: LockKind;
  mode: LockMode;
  flags: number;
  start: number;
  length: number;
  timeout: number;
  signal: AbortSignal | undefined;
  owner: string | undefined;
  removeOnRelease: boolean;
}

const NO_OPTIONS: LockOptions = Object.freeze({});
const OPTION_NAMES = ['mode', 'kind', 'timeout', 'signal', 'owner', 'range', 'removeOnRelease'] as const;

/** One of OPTION_NAMES: a switch on interned strings, where a Set costs a hash lookup per key per call. */
function isOptionName(key: string): boolean {
  switch (key) {
    case 'mode':
    case 'kind':
    case 'timeout':
    case 'signal':
    case 'owner':
    case 'range':
    case 'removeOnRelease':
      return true;
    default:
      return false;
  }
}

/**
 * True for an absolute path that path.resolve would return unchanged: no
 * empty, "." or ".." segment and no trailing slash ("/" itself is one).
 * One pass over the characters (a regular expression with look-aheads
 * scanned the path twice on every acquisition).
 */
function isNormalAbsolute(p: string): boolean {
  const n = p.length;
  if (n === 0 || p.charCodeAt(0) !== 0x2f) return false;
  if (n === 1) return true;
  let start = 1;
  for (let i = 1; i <= n; i++) {
    if (i < n && p.charCodeAt(i) !== 0x2f) continue;
    const length = i - start;
    if (length === 0) return false; // "//" or a trailing slash
    if (p.charCodeAt(start) === 0x2e && (length === 1 || (length === 2 && p.charCodeAt(start + 1) === 0x2e))) {
      return false; // "." or ".."
    }
    start = i + 1;
  }
  return true;
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  return typeof value === 'function' ? 'a function' : `an ${Array.isArray(value) ? 'array' : 'object'}`;
}

/** A validated path: its absolute form and a printable form. */
interface NormalPath {
  path: string | Buffer;
  display: string;
}

// The last string path validated and its result: a lock taken in a loop
// passes the same path every time, and validating it scans it twice (NUL
// bytes, normal form). Strings are immutable, so equal input means an equal
// result; a relative path is not cached (the working directory may change).
let lastPathInput = '';
let lastPath: NormalPath = { path: '', display: '' };

/** Validates a lock path; returns its absolute form and a printable form. */
export function normalizePath(input: unknown): NormalPath {
  if (typeof input === 'string') {
    if (input === lastPathInput && input.length > 0) return lastPath;
    if (input.length === 0) throw new TypeError('kernel-lock: path must be a non-empty string or Buffer, got ""');
    if (input.includes('\0')) {
      throw new TypeError(`kernel-lock: path must not contain NUL bytes, got ${describe(input)}`);
    }
    // path.resolve is the costliest step of validation; skip it for paths
    // that are already absolute and normal (no "//", "/./", "/../", no
    // trailing slash), which is what callers pass in hot loops.
    if (!isNormalAbsolute(input)) {
      const absolute = path.resolve(input);
      return { path: absolute, display: absolute };
    }
    lastPathInput = input;
    lastPath = Object.freeze({ path: input, display: input });
    return lastPath;
  }
  if (Buffer.isBuffer(input)) {
    if (input.length === 0)
      throw new TypeError('kernel-lock: path must be a non-empty string or Buffer, got an empty Buffer');
    if (input.includes(0)) throw new TypeError('kernel-lock: path Buffer must not contain NUL bytes');
    const absolute = input[0] === 0x2f ? input : Buffer.concat([Buffer.from(`${process.cwd()}/`), input]);
    return { path: absolute, display: absolute.toString('utf8') };
  }
  if (input instanceof URL) {
    throw new TypeError('kernel-lock: file URLs are not accepted; pass url.fileURLToPath(url)');
  }
  throw new TypeError(`kernel-lock: path must be a non-empty string or Buffer, got ${describe(input)}`);
}

function isAbortSignal(value: unknown): value is AbortSignal {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as AbortSignal).aborted === 'boolean' &&
    typeof (value as AbortSignal).addEventListener === 'function'
  );
}

/** The whole file: what a request without a range locks. */
const WHOLE_FILE: Readonly<LockRange> = Object.freeze({ start: 0, length: 0 });

function validateRange(range: unknown, kind: LockKind): Readonly<LockRange> {
  if (range === undefined) return WHOLE_FILE;
  if (kind === 'flock') {
    throw new TypeError("kernel-lock: option range needs kind 'ofd' or 'posix'; flock(2) locks whole files only");
  }
  if (typeof range !== 'object' || range === null) {
    throw new TypeError(`kernel-lock: option range must be { start, length }, got ${describe(range)}`);
  }
  const { start, length } = range as Partial<LockRange>;
  for (const [name, value] of [
    ['start', start],
    ['length', length],
  ] as const) {
    if (typeof value !== 'number') {
      throw new TypeError(`kernel-lock: option range.${name} must be a number, got ${describe(value)}`);
    }
    if (!Number.isSafeInteger(value) || value < 0) {
      throw new RangeError(`kernel-lock: option range.${name} must be a non-negative integer, got ${describe(value)}`);
    }
  }
  return { start: start as number, length: length as number };
}

/** Validates the options of one call; throws before any side effect. */
export function normalizeOptions(
  pathInput: unknown,
  options: LockOptions | undefined,
  defaultTimeout: number,
): LockRequest {
  const { path: lockPath, display } = normalizePath(pathInput);
  if (options !== undefined && (typeof options !== 'object' || options === null)) {
    throw new TypeError(`kernel-lock: options must be an object, got ${describe(options)}`);
  }
  const opts = options ?? NO_OPTIONS;
  // for-in, not Object.keys(): no array per call on the hot path. Options
  // objects are plain literals; inherited enumerable keys count as given.
  for (const key in opts) {
    if (!isOptionName(key)) {
      throw new TypeError(
        `kernel-lock: unknown option ${JSON.stringify(key)}; known options: ${OPTION_NAMES.join(', ')}`,
      );
    }
  }
  // Only undefined means "absent": null is a mistake worth reporting, as it
  // is for owner, signal and range.
  const mode = opts.mode === undefined ? 'exclusive' : opts.mode;
  if (mode !== 'exclusive' && mode !== 'shared') {
    throw new TypeError(`kernel-lock: option mode must be 'exclusive' or 'shared', got ${describe(mode)}`);
  }
  const kind = opts.kind === undefined ? 'flock' : opts.kind;
  if (kind !== 'flock' && kind !== 'ofd' && kind !== 'posix') {
    throw new TypeError(`kernel-lock: option kind must be 'flock', 'ofd' or 'posix', got ${describe(kind)}`);
  }
  if (kind === 'ofd' && !native.ofdSupported) {
    const error = new Error(
      `kernel-lock: kind 'ofd' (open file description locks) is not supported on this platform (${process.platform}); ` +
        "use 'flock' or 'posix'",
    ) as Error & { code: string };
    error.code = 'ERR_KERNEL_LOCK_UNSUPPORTED';
    throw error;
  }
  const timeout = opts.timeout === undefined ? defaultTimeout : opts.timeout;
  if (typeof timeout !== 'number') {
    throw new TypeError(`kernel-lock: option timeout must be a number of milliseconds, got ${describe(timeout)}`);
  }
  if (Number.isNaN(timeout) || timeout < 0) {
    throw new RangeError(
      `kernel-lock: option timeout must be >= 0 milliseconds (0 = one attempt, Infinity = wait forever), got ${timeout}`,
    );
  }
  const signal = opts.signal;
  if (signal !== undefined && !isAbortSignal(signal)) {
    throw new TypeError(`kernel-lock: option signal must be an AbortSignal, got ${describe(signal)}`);
  }
  const owner = opts.owner;
  if (owner !== undefined && typeof owner !== 'string') {
    throw new TypeError(`kernel-lock: option owner must be a string, got ${describe(owner)}`);
  }
  const removeOnRelease = opts.removeOnRelease === undefined ? false : opts.removeOnRelease;
  if (typeof removeOnRelease !== 'boolean') {
    throw new TypeError(`kernel-lock: option removeOnRelease must be a boolean, got ${describe(removeOnRelease)}`);
  }
  const { start, length } = validateRange(opts.range, kind);
  const flags = Flag[kind] | (mode === 'shared' ? Flag.shared : 0);
  return {
    path: lockPath,
    display,
    kind,
    mode,
    flags,
    start,
    length,
    timeout,
    signal,
    owner,
    removeOnRelease,
  };
}
