// A held lock. Releasing it (explicitly, through `using`, or, as a last
// resort, when it is garbage-collected) closes its descriptor, which is what
// makes the kernel drop the lock; with removeOnRelease the last holder first
// unlinks the file while still holding it, so no waiter can be handed a lock
// on a file that is about to disappear. A file with foreign content (not an
// owner record) is never unlinked, whatever the options say.

// The timers module's own setTimeout, not the global one: a test's fake
// timers replace the global and would hold back the deferred registration.
import { setTimeout as realSetTimeout } from 'node:timers';
import { Flag, native } from '../native/binding.js';
import { type SystemError, systemError } from './errors.js';
import { type HeldLock, type InodeKey, noteAcquired, noteReleasedFrom } from './held-locks.js';
import type { LockKind, LockMode, LockRange, LockRequest } from './options.js';

/** State a handle needs to release; kept apart so the GC finalizer does not retain the handle. */
interface ReleaseState {
  request: LockRequest;
  fd: number;
  released: boolean;
  /** The descriptor is the process-wide posix table's entry for the inode. */
  posix: boolean;
  key: InodeKey;
  held: HeldLock;
  /** The inode's list in the held-locks table, which holds `held` until the release. */
  heldHere: HeldLock[];
}

function releaseLock(state: ReleaseState): void {
  state.released = true;
  noteReleasedFrom(state.heldHere, state.held);
  const req = state.request;
  const flags = req.flags | (req.removeOnRelease ? Flag.unlink : 0);
  // posix: the table unlinks only as the inode's last user in the process;
  // otherwise it unlocks this range and passes the turn, closing nothing.
  if (state.posix) native.posixRelease(state.fd, req.path, flags, req.start, req.length);
  else native.release(state.fd, req.path, flags, req.start, req.length);
}

const leaked = new FinalizationRegistry<ReleaseState>((state) => {
  if (state.released) return;
  try {
    releaseLock(state);
  } catch {
    // Thrown from a GC callback it would be an uncaught exception; the
    // environment's teardown closes the descriptor in any case.
  }
  process.emitWarning(
    `A LockHandle for ${state.request.display} was garbage-collected without release(); ` +
      'its lock was released by closing the descriptor. Call release() or hold it with `await using`.',
    { code: 'KERNEL_LOCK_HANDLE_LEAKED', type: 'Warning' },
  );
});

// Registering with a FinalizationRegistry is the costliest step of an
// uncontended acquisition in JavaScript (~0.3 µs of ~10, measured: the
// registration and, once the handle dies, the weak cell the collector must
// process and the cleanup callback it queues). A handle released soon after
// it was granted never needs the finalizer, so registration is deferred:
// new handles wait in `unregistered` (strongly held there, so the collector
// cannot take one before it is registered) until REGISTER_AFTER_MS have
// passed or REGISTER_BATCH more are waiting, whichever comes first; those
// still held by then are registered, the released ones are dropped. A
// forgotten handle is therefore always registered, at most that late, and
// its descriptor closed when it is collected, as before. (A flush at the
// end of each loop turn, setImmediate, was measured: a cold setImmediate
// per acquisition cost more than the registration it saves.)
const REGISTER_BATCH = 64;
const REGISTER_AFTER_MS = 100;
const unregistered: LockHandle[] = [];
const unregisteredStates: ReleaseState[] = [];
let registerTimer: NodeJS.Timeout | undefined;

function registerLater(handle: LockHandle, state: ReleaseState): void {
  unregistered.push(handle);
  unregisteredStates.push(state);
  if (unregistered.length >= REGISTER_BATCH) {
    registerPending();
  } else if (registerTimer === undefined) {
    // Unreferenced: a pending registration never keeps the process alive
    // (at exit the kernel closes every descriptor anyway).
    registerTimer = realSetTimeout(registerTimed, REGISTER_AFTER_MS).unref();
  }
}

function registerTimed(): void {
  registerTimer = undefined;
  registerPending();
}

function registerPending(): void {
  // No unregister token: unregistering on every release costs more (and
  // grows with the number of live handles) than the cleanup callback,
  // which finds the state released and does nothing.
  for (let i = 0; i < unregistered.length; i++) {
    const state = unregisteredStates[i]!;
    if (!state.released) leaked.register(unregistered[i]!, state);
  }
  unregistered.length = 0;
  unregisteredStates.length = 0;
}

const RESOLVED: Promise<void> = Promise.resolve();
/** A prepared handle's held-locks list until the grant (a release before it finds nothing to remove). */
const NO_LIST: HeldLock[] = [];

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

let completeGrant: (handle: LockHandle, grant: HandleGrant) => void;

/**
 * Completes a handle prepared by its constructor once the kernel granted
 * the lock: the descriptor, the grant time, the record's outcome; the lock
 * enters the held-locks table and the handle the finalizer's care.
 */
export function grantHandle(handle: LockHandle, grant: HandleGrant): LockHandle {
  completeGrant(handle, grant);
  return handle;
}

/** What a handle takes from its request: known before the lock is granted. */
export interface HandleInit {
  request: LockRequest;
  /** This handle's entry in the held-locks table (one object per handle). */
  held: HeldLock;
  /** The descriptor will be the process-wide posix table's entry for the inode. */
  posix: boolean;
}

/** What the grant adds to a prepared handle. */
export interface HandleGrant {
  fd: number;
  key: InodeKey;
  readOnly: boolean;
  recordErrno: number;
  /** No record was written because the file holds foreign content. */
  foreign: boolean;
  /** When the lock was granted (Date.now()). */
  at: number;
}

/** Why no owner record was written although the lock is exclusive. */
export type RecordSkipped = 'foreign-content';

/** A lock held by this process. Release is idempotent. */
export class LockHandle implements Disposable, AsyncDisposable {
  /** The lock file's absolute path. */
  readonly path: string;
  /** The open descriptor that carries the lock (the kernel drops the lock when it closes). */
  readonly fd: number;
  readonly kind: LockKind;
  readonly mode: LockMode;
  /** The locked byte range, for ofd and posix locks. */
  readonly range: LockRange | undefined;
  /**
   * When the lock was granted (milliseconds since the epoch; see acquiredAt).
   * An uncontended acquisition reads the clock once, as its attempt begins:
   * this is then exactly its owner record's createdAt.
   */
  readonly acquiredAtMs: number;
  /**
   * True when the lock is held through a read-only descriptor: the file
   * could only be opened read-only, or (kernel-lock run) it holds foreign
   * content and is locked the way flock(1) locks it.
   */
  readonly readOnly: boolean;
  /** Why the owner record could not be written (full disk, read-only file), or null. */
  readonly recordError: SystemError | null;
  /**
   * 'foreign-content' when the file holds something other than an owner
   * record or legacy marker (a script, a database, any data): kernel-lock
   * then locks it but writes nothing into it, truncates nothing and never
   * unlinks it, even with removeOnRelease. null otherwise.
   */
  readonly recordSkipped: RecordSkipped | null;

  readonly #request: LockRequest;
  readonly #state: ReleaseState;

  /**
   * @internal Use lock(), tryLock() or lockSync(). A handle is built in two
   * steps: everything the request determines here, before any wait, and the
   * rest by grantHandle() when the kernel grants the lock, so that the
   * JavaScript run after a waiter's wake-up (on caches gone cold while it
   * slept) does as little as possible.
   */
  constructor(init: HandleInit) {
    const { request } = init;
    this.#request = request;
    this.path = request.display;
    this.fd = -1;
    this.kind = request.kind;
    this.mode = request.mode;
    this.range = request.kind === 'flock' ? undefined : { start: request.start, length: request.length };
    this.acquiredAtMs = Number.NaN; // a double from the start: the grant stores one
    this.readOnly = false;
    this.recordError = null;
    this.recordSkipped = null;
    this.#state = { request, fd: -1, released: false, posix: init.posix, key: '', held: init.held, heldHere: NO_LIST };
  }

  static {
    completeGrant = (handle, grant) => {
      const state = handle.#state;
      const mutable = handle as Mutable<LockHandle>;
      mutable.fd = grant.fd;
      mutable.acquiredAtMs = grant.at;
      mutable.readOnly = grant.readOnly;
      if (grant.recordErrno !== 0) mutable.recordError = systemError(grant.recordErrno, 'write', handle.path);
      if (grant.foreign) mutable.recordSkipped = 'foreign-content';
      state.fd = grant.fd;
      state.key = grant.key;
      state.heldHere = noteAcquired(grant.key, state.held);
      registerLater(handle, state);
    };
  }

  /** When the lock was granted. */
  get acquiredAt(): Date {
    return new Date(this.acquiredAtMs);
  }

  /** True once released (or force-released). */
  get released(): boolean {
    return this.#state.released;
  }

  /**
   * True while the lock is held and `path` still names the locked file. False
   * means someone removed or replaced the file (by hand, `rm -f`): the lock
   * then no longer excludes processes that open the path afresh.
   */
  verify(): boolean {
    if (this.#state.released) return false;
    try {
      return native.verify(this.fd, this.#request.path);
    } catch {
      return false;
    }
  }

  /** Releases the lock synchronously. Safe to call more than once. */
  releaseSync(): void {
    if (this.#state.released) return;
    releaseLock(this.#state);
  }

  /** Releases the lock. Safe to call more than once. */
  release(): Promise<void> {
    // Not an async function: releasing is two system calls, and an async
    // frame would cost more than they do. Failures still arrive as rejections.
    try {
      this.releaseSync();
      return RESOLVED;
    } catch (error) {
      return Promise.reject(error);
    }
  }

  [Symbol.dispose](): void {
    this.releaseSync();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release();
  }
}
