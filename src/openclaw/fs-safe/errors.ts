// The errors of the file-lock contract. fs-safe throws plain Errors carrying
// `code`, `lockPath` and `normalizedTargetPath`, and the runtime branches on
// `code` alone (`file_lock_timeout`, `file_lock_stale`); the messages start
// with fs-safe's exact words, and ours then name the holder, which fs-safe's
// never did.

/** Code of the error thrown when the lock is still held at the deadline. */
export const FILE_LOCK_TIMEOUT = 'file_lock_timeout';

/** Code of the error thrown when a legacy marker is judged stale and recovery fails closed. */
export const FILE_LOCK_STALE = 'file_lock_stale';

/** fs-safe's error codes that this module can raise. */
export type FsSafeErrorCode = 'too-large' | 'outside-workspace' | 'invalid-path' | 'not-file' | 'helper-unavailable';

/** A lock that could not be had: `file_lock_timeout` or `file_lock_stale`. */
export class FileLockError extends Error {
  override readonly name = 'FileLockError';
  readonly code: typeof FILE_LOCK_TIMEOUT | typeof FILE_LOCK_STALE;
  readonly lockPath: string;
  readonly normalizedTargetPath: string;
  /** The holder's pid as this process sees it, when known (a kernel-lock holder, or a legacy marker's pid). */
  readonly holderPid: number | null;

  constructor(
    code: typeof FILE_LOCK_TIMEOUT | typeof FILE_LOCK_STALE,
    paths: { lockPath: string; normalizedTargetPath: string },
    detail: string,
    options: { holderPid?: number | null; cause?: unknown } = {},
  ) {
    const head = code === FILE_LOCK_TIMEOUT ? 'file lock timeout for' : 'file lock stale for';
    super(`${head} ${paths.normalizedTargetPath}${detail ? `: ${detail}` : ''}`, { cause: options.cause });
    this.code = code;
    this.lockPath = paths.lockPath;
    this.normalizedTargetPath = paths.normalizedTargetPath;
    this.holderPid = options.holderPid ?? null;
  }
}

/** fs-safe's FsSafeError shape (name, code, category) for the policy failures this module shares with it. */
export class FsSafeError extends Error {
  override readonly name = 'FsSafeError';
  readonly code: FsSafeErrorCode;
  readonly category = 'policy' as const;
  constructor(code: FsSafeErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

type SuppressedErrorConstructor = new (error: unknown, suppressed: unknown, message?: string) => Error;

/**
 * fs-safe's shape when a callback and the release both fail: the release
 * error is primary (`error`), the callback's is `suppressed`. Node 20 lacks
 * the global SuppressedError, so an Error with the same fields stands in.
 */
export function suppressedError(error: unknown, suppressed: unknown, message: string): Error {
  const Native = (globalThis as { SuppressedError?: SuppressedErrorConstructor }).SuppressedError;
  if (Native !== undefined) return new Native(error, suppressed, message);
  return Object.assign(new Error(message), { name: 'SuppressedError', error, suppressed });
}
