// The runtime's session lock timeout error (2026.4.24: SessionWriteLockTimeoutError
// in src/agents/session-write-lock-error.ts). Its failover classifier keys on
// `code`: without it a lock timeout is taken for a model timeout and the
// fallback chain runs ("All models failed"). The message keeps the runtime's
// text byte for byte, because operators and code match it; what follows it
// is new: who holds the lock, from the kernel.

/** The `code` of a session lock timeout, as the runtime defines it. */
export const SESSION_WRITE_LOCK_TIMEOUT_CODE = 'OPENCLAW_SESSION_WRITE_LOCK_TIMEOUT';

/** What the runtime's error constructor takes. */
export interface SessionWriteLockTimeoutParams {
  timeoutMs: number;
  /** `pid=<pid>` of the holder, or `unknown`. */
  owner: string;
  lockPath: string;
}

/** Who held the lock when the wait timed out (kernel-lock's addition to the error). */
export interface SessionLockHolder {
  /** Its pid as this process sees it (named by the kernel), else as its record says; null if unknown. */
  pid: number | null;
  /** Its command line, or null. */
  command: string | null;
  /** The owner label in its record, or null. */
  owner: string | null;
  /** How long it has held the lock, from the record stamped at grant time; null if unknown. */
  heldForMs: number | null;
  /**
   * 'kernel-lock': it holds the kernel lock. 'legacy-marker': an old-version
   * process's marker (no kernel lock). 'engine': it holds the session's lock
   * on the lock engine passed as `engine` (kernel-lock/pg), maybe on another host.
   */
  kind: 'kernel-lock' | 'legacy-marker' | 'engine';
  /** With an engine: the holder's host name, as the engine recorded it (null if unknown). */
  host?: string | null;
  /** With an engine: the holder's fencing token (null if unknown). */
  token?: bigint | null;
}

/** The timeout error of a session write lock: the runtime's fields, plus who holds it. */
export class SessionWriteLockTimeoutError extends Error {
  /** Always OPENCLAW_SESSION_WRITE_LOCK_TIMEOUT: the runtime classifies errors by it. */
  readonly code = SESSION_WRITE_LOCK_TIMEOUT_CODE;
  /** The timeout that expired, in milliseconds. */
  readonly timeoutMs: number;
  /** `pid=<pid>` of the holder, or `unknown`: the token the message carries. */
  readonly owner: string;
  /** The lock file. */
  readonly lockPath: string;
  /** The holder's pid, or null (set by kernel-lock when it throws). */
  declare readonly pid?: number | null;
  /** Who holds the lock (set by kernel-lock when it throws). */
  declare readonly holder?: SessionLockHolder;

  constructor(params: SessionWriteLockTimeoutParams) {
    super(`session file locked (timeout ${params.timeoutMs}ms): ${params.owner} ${params.lockPath}`);
    this.name = 'SessionWriteLockTimeoutError';
    this.timeoutMs = params.timeoutMs;
    this.owner = params.owner;
    this.lockPath = params.lockPath;
  }
}

/** True for a session lock timeout: an instance, or any object carrying its code (the runtime's own test). */
export function isSessionWriteLockTimeoutError(err: unknown): boolean {
  return (
    err instanceof SessionWriteLockTimeoutError ||
    Boolean(err && typeof err === 'object' && (err as { code?: unknown }).code === SESSION_WRITE_LOCK_TIMEOUT_CODE)
  );
}

/** Builds the error the caller expects: ours, or (inside the runtime) the runtime's own class. */
export type TimeoutErrorFactory = (params: SessionWriteLockTimeoutParams) => Error;

/** The default factory: kernel-lock's SessionWriteLockTimeoutError. */
export const createTimeoutError: TimeoutErrorFactory = (params) => new SessionWriteLockTimeoutError(params);

function define(target: object, name: string, value: unknown, enumerable = true): void {
  Object.defineProperty(target, name, { value, enumerable, writable: true, configurable: true });
}

/**
 * Adds who holds the lock to a timeout error, whatever its class: the words
 * after the runtime's message, `pid`, `holder` and the core error as `cause`.
 */
export function withHolder<E extends Error>(
  error: E,
  facts: { holder: SessionLockHolder; detail: string; cause?: unknown },
): E {
  if (facts.detail !== '') {
    const before = `${error.name}: ${error.message}`;
    define(error, 'message', `${error.message} ${facts.detail}`, false);
    // V8 writes the stack's first line when it is first read: with the new
    // message if nobody read it yet, else with the old one, to be replaced.
    const after = `${error.name}: ${error.message}`;
    const stack = error.stack;
    if (typeof stack === 'string' && !stack.startsWith(after) && stack.startsWith(before)) {
      define(error, 'stack', `${after}${stack.slice(before.length)}`, false);
    }
  }
  define(error, 'pid', facts.holder.pid);
  define(error, 'holder', facts.holder);
  if (facts.cause !== undefined) define(error, 'cause', facts.cause, false);
  return error;
}
