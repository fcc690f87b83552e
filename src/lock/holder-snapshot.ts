// The shape of "who holds this lock": what the kernel says about a lock
// file's holders, and what the file's owner record adds (on a lease file,
// also its token and which superseded holders still live). LockTimeoutError
// carries one (gathered with a bounded effort when the wait gives up);
// inspect() returns a LockInspection, which extends it with the waiters and
// the record's own process. Every field is plain JSON (no bigint, no Date):
// `kernel-lock status --json` prints it as is.
import type { LockHolder } from '../proc/holders.js';
import type { OwnerRecord } from './owner-record.js';
import type { PathText } from './path-text.js';

export type { DescriptorProcess, LockHolder } from '../proc/holders.js';

/**
 * - `free`: no kernel lock, whatever the file says.
 * - `held`: another process (or another thread's handle) holds a kernel lock.
 * - `held-by-self`: this process holds it.
 * - `orphan-record`: no kernel lock, and the file's record names a process that is dead:
 *   the leftover of a crash, or of the legacy marker. Safe to sweep. (inspect() only.)
 */
export type LockState = 'free' | 'held' | 'held-by-self' | 'orphan-record';

/** One holder of a lease (src/lease/): the process behind its token's liveness byte. */
export interface LeaseHolderView {
  /** The holder's token (a decimal string: JSON has no bigint). */
  token: string;
  /** The process holding it, from the descriptor search; null when not found (another pid namespace, no search). */
  pid: number | null;
  alive: boolean | null;
  argv: string[] | null;
}

/** What a lease file says: its last token, and who holds which token. */
export interface LeaseView {
  /** The last token handed out (a decimal string). */
  token: string;
  /** When that token was granted. */
  grantedAt: string | null;
  /** After how long its holder may be superseded; null: never while alive. */
  takeoverAfterMs: number | null;
  /** The holder of the last token, or null when that lease is over (released, or its holder died). */
  current: LeaseHolderView | null;
  /** Holders of older tokens that were superseded and are still alive (their fenced writes are refused). */
  superseded: LeaseHolderView[];
  /** True while someone holds the fence (a fenced write or a token change in progress). */
  fenced: boolean;
}

/** Who held a lock file, from the kernel, and the owner record when it is the holder's. */
export interface HolderSnapshot extends PathText {
  /** Whether a file exists at the path (it need not be a regular file). */
  exists: boolean;
  /** True when the kernel reports a lock (state `held` or `held-by-self`). */
  held: boolean;
  state: LockState;
  /** Kernel locks on the file, from /proc/locks (or the holder's descriptors) cross-checked with a probe. */
  holders: LockHolder[];
  /** The owner record in the file, or null (no file, empty, garbage, unreadable). */
  record: OwnerRecord | null;
  /**
   * Whether the record was written by the current holder; null when it
   * cannot be told (no holder, no record, or a holder the kernel does not name).
   */
  recordMatchesHolder: boolean | null;
  /** How long the current holder has held the lock, from its record; null unless the record matches the holder. */
  heldForMs: number | null;
  /** Caveats, in words (for instance why a probe or the record was skipped, or a search cut short). */
  notes: string[];
  /** The lease the file carries (a file used by lease()), or null. */
  lease: LeaseView | null;
}

/**
 * The note of a snapshot whose host-wide descriptor search stopped at its bound (descriptors read, or time) before
 * reading every process: a holder it did not name may be behind the processes it did not reach.
 */
export const SEARCH_CUT_SHORT_NOTE =
  'the descriptor search of /proc was cut short (by its bound on descriptors or time)';
