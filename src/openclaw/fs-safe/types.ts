// The public types of `@openclaw/fs-safe/file-lock`, as published in 0.18.1
// (what openclaw 2026.9.6 pins) and 0.21.0 (latest): the two releases ship
// identical declaration files for this entry point, so one set serves both.
// Names and shapes are theirs; the doc lines say what each means when the
// kernel owns the lock (docs/FS-SAFE.md has the full table).

/** fs-safe's `Root` capability, reduced to what a lock needs: its real path. */
export interface FileLockRoot {
  /** The root directory with symbolic links resolved. */
  readonly rootReal: string;
}

/** The retry schedule. With kernel-lock it is not polled: it sets the deadline of one kernel wait. */
export type FileLockRetryOptions = {
  /** Retry attempts after the first; 0 means one attempt. Omitted: no bound from the schedule. */
  retries?: number;
  /** Exponential backoff factor (default 1: constant delay). */
  factor?: number;
  /** First delay in ms (default 50). */
  minTimeout?: number;
  /** Largest delay in ms (default 1000). */
  maxTimeout?: number;
  /** Jitter: each delay may grow up to twice its base (capped at maxTimeout). */
  randomize?: boolean;
};

/** What fs-safe does with a lock it judges stale. With kernel-lock only legacy markers can be stale. */
export type FileLockStaleRecovery = 'fail-closed' | 'remove-if-unchanged';

/** Passed to onCompromised. */
export type SidecarLockCompromisedInfo = {
  lockPath: string;
  normalizedTargetPath: string;
};

/** Passed to shouldReclaim (only ever for a legacy O_EXCL marker; a kernel-held lock is never stale). */
export type FileLockReclaimParams<Held extends boolean = boolean> = {
  lockPath: string;
  normalizedTargetPath: string;
  payload: unknown;
  staleMs: number;
  nowMs: number;
  heldByThisProcess: Held;
};

/** Passed to shouldRemoveStaleLock (only ever for a legacy O_EXCL marker). */
export type FileLockStaleSnapshot = {
  lockPath: string;
  normalizedTargetPath: string;
  raw: string;
  payload: unknown;
};

/** What kernel-lock does with a lock file whose content is an O_EXCL marker of stock fs-safe. */
export type LegacyMarkerPolicy = 'respect' | 'ignore';

/** Options shared by the asynchronous and synchronous acquisitions. */
export type FileLockCommonOptions = {
  /** The lock file; default `${realpath(dirname(target))}/${basename(target)}.lock`. */
  lockPath?: string;
  /** Deadline of the kernel wait in ms; Infinity or omitted: no deadline of its own. */
  timeoutMs?: number;
  /** A schedule whose total (with jitter at its maximum) becomes a deadline of the kernel wait. */
  retry?: FileLockRetryOptions;
  /** Applies to legacy markers only. */
  staleRecovery?: FileLockStaleRecovery;
  /** Acquisitions of one manager domain with the same owner string share the lock (reference-counted). */
  reentrantOwner?: string;
  /** Turns the holder's payload text into what shouldReclaim and shouldRemoveStaleLock see. */
  parsePayload?: (raw: string) => unknown;
  /** The lock path must lie inside this root. */
  lockRoot?: FileLockRoot;
  /** Called once when the lock file is removed or replaced while held (inotify, at release, or at verifyStillHeld()). */
  onCompromised?: (info: SidecarLockCompromisedInfo) => void;
  /** Validated as fs-safe does; kernel-lock watches with inotify instead of a timer, so the value sets no period. */
  compromiseCheckIntervalMs?: number;
  /** kernel-lock extension: respect (default) or ignore markers written by stock fs-safe. */
  legacyMarkers?: LegacyMarkerPolicy;
};

/** Options of acquireFileLock(), withFileLock() and a manager's acquire()/withLock(). */
export type FileLockAcquireOptions<TPayload extends Record<string, unknown>> = FileLockCommonOptions & {
  /** Manager domain for in-process arbitration; default `fs-safe.file-lock:${targetPath}`. */
  managerKey?: string;
  /** Age after which a legacy marker counts as stale (default 30 000); never applied to a kernel-held lock. */
  staleMs?: number;
  /** The owner's description, stored in the owner record and shown to waiters. */
  payload: () => TPayload | Promise<TPayload>;
  /** Stale policy for legacy markers; never asked about a kernel-held lock. */
  shouldReclaim?: (params: FileLockReclaimParams) => boolean | Promise<boolean>;
  /** Approval to replace a stale legacy marker under `remove-if-unchanged`. */
  shouldRemoveStaleLock?: (snapshot: FileLockStaleSnapshot) => boolean | Promise<boolean>;
  /** Shown in heldEntries(). */
  metadata?: Record<string, unknown>;
  /**
   * Marks the owner record as retained. The kernel lock still ends with its
   * process, but if the holder never released (killed, or exited holding it),
   * the next retainOnExit acquisition judges the record by its stale policy
   * (parsePayload, shouldReclaim, staleRecovery), as fs-safe judges a retained
   * sidecar. Takes a guard lock `${lockPath}.retain` for the whole hold.
   */
  retainOnExit?: boolean;
};

/** Options of acquireFileLockSync() and withFileLockSync(): the callbacks must be synchronous. */
export type FileLockSyncAcquireOptions<TPayload extends Record<string, unknown>> = FileLockCommonOptions & {
  staleMs?: number;
  payload: () => TPayload;
  shouldReclaim?: (params: FileLockReclaimParams<false>) => boolean;
  shouldRemoveStaleLock?: (snapshot: FileLockStaleSnapshot) => boolean;
};

/** A held lock (asynchronous API). */
export type FileLockHandle = {
  lockPath: string;
  normalizedTargetPath: string;
  /** True while this process holds the kernel lock and `lockPath` still names the locked file. */
  verifyStillHeld: () => Promise<boolean>;
  /** Releases this acquisition; idempotent. The kernel lock goes with the last reference. */
  release: () => Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
};

/** A held lock (synchronous API). */
export type FileLockSyncHandle = {
  lockPath: string;
  normalizedTargetPath: string;
  verifyStillHeld(): boolean;
  release(): void;
  [Symbol.dispose](): void;
};

/** One lock a manager holds, for diagnostics. */
export type FileLockHeldEntry = {
  normalizedTargetPath: string;
  lockPath: string;
  /** Date.now() at grant. */
  acquiredAt: number;
  metadata: Record<string, unknown>;
  /** Releases the lock whatever its reference count; resolves true if this call released it. */
  forceRelease: () => Promise<boolean>;
};

/** A manager domain: in-process bookkeeping over kernel locks. */
export type FileLockManager = {
  acquire<TPayload extends Record<string, unknown>>(
    targetPath: string,
    options: FileLockAcquireOptions<TPayload>,
  ): Promise<FileLockHandle>;
  withLock<T, TPayload extends Record<string, unknown>>(
    targetPath: string,
    options: FileLockAcquireOptions<TPayload>,
    fn: () => Promise<T>,
  ): Promise<T>;
  /** Releases every lock the domain holds, whatever the reference counts. */
  drain(): Promise<void>;
  /** Releases every lock the domain holds, synchronously, and forgets them. */
  reset(): void;
  heldEntries(): FileLockHeldEntry[];
};

/** Process-wide defaults (fs-safe's configureFsSafeLocks). */
export type FsSafeLockConfig = {
  staleRecovery: FileLockStaleRecovery;
  staleMs?: number;
  timeoutMs?: number;
  retry?: FileLockRetryOptions;
};
