// The error the runtime already knows. Its message must keep the legacy
// prefix byte for byte: the runtime's model-fallback logic and operators'
// log searches match `session file locked (timeout …ms): pid=… <path>`.
// What follows the prefix is new: who holds the lock, from the kernel.

/** A session write lock could not be acquired before the timeout. */
export class SessionWriteLockError extends Error {
  override readonly name = 'SessionWriteLockError';
  /** Always "session_busy": the runtime branches on it. */
  readonly reason = 'session_busy';
  /** The timeout that expired, in milliseconds. */
  readonly timeoutMs: number;
  /** The lock file. */
  readonly lockPath: string;
  /** `pid=<pid>` of the holder, or `unknown`: the same token the legacy message carried. */
  readonly owner: string;
  /** The holder's pid as a number, or null when unknown. */
  readonly pid: number | null;
  /** What was found about the holder (the core timeout error's HolderSnapshot, or a legacy marker description). */
  readonly holder: unknown;

  constructor(params: {
    timeoutMs: number;
    lockPath: string;
    pid: number | null;
    detail?: string;
    holder?: unknown;
    cause?: unknown;
  }) {
    const owner = params.pid === null ? 'unknown' : `pid=${params.pid}`;
    const detail = params.detail ? ` ${params.detail}` : '';
    super(
      `session file locked (timeout ${params.timeoutMs}ms): ${owner} ${params.lockPath}${detail}`,
      params.cause === undefined ? undefined : { cause: params.cause },
    );
    this.timeoutMs = params.timeoutMs;
    this.lockPath = params.lockPath;
    this.owner = owner;
    this.pid = params.pid;
    this.holder = params.holder ?? null;
  }
}
