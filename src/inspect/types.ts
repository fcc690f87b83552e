// The shape of an inspection: what the kernel says about a lock file, and
// what the file's owner record adds. Every field is plain JSON (no bigint,
// no Date), because `kernel-lock status --json` prints it as is.
import type { LockKind, LockMode, LockRange } from '../lock/options.js';
import type { OwnerRecord } from '../lock/owner-record.js';
import type { RecordScope } from './record-process.js';

/**
 * - `free`: no kernel lock, whatever the file says.
 * - `held`: another process (or another thread's handle) holds a kernel lock.
 * - `held-by-self`: this process holds it.
 * - `orphan-record`: no kernel lock, and the file's record names a process that is dead:
 *   the leftover of a crash, or of the legacy marker. Safe to sweep.
 */
export type LockState = 'free' | 'held' | 'held-by-self' | 'orphan-record';

/** A process holding a lock through one of its descriptors (found in /proc/<pid>/fdinfo). */
export interface DescriptorProcess {
  pid: number;
  alive: boolean;
  argv: string[] | null;
}

/** One kernel lock on the file. */
export interface LockHolder {
  /**
   * The holder's pid as the kernel reports it, in the pid namespace of /proc.
   * -1: an OFD lock (it belongs to an open file, not a process). null: the
   * kernel did not name it (found only by probing: typically a process in a
   * pid namespace we cannot see, i.e. another container).
   */
  pid: number | null;
  kind: LockKind;
  mode: LockMode;
  /** Byte range of fcntl locks (length 0 = to end of file); absent for flock. */
  range?: LockRange;
  /** True when the kernel named a pid we can look at (pid > 0). */
  visible: boolean;
  /** Whether that pid is alive; null when not visible. For flock, a dead pid means the descriptor was inherited. */
  alive: boolean | null;
  /** Whether the holder is in our pid namespace; false when it is provably elsewhere, null when unknown. */
  sameNamespace: boolean | null;
  /** True when the holder is this process. */
  self: boolean;
  /** The holder's pid inside its own (nested) pid namespace, when that differs from `pid`; else null. */
  pidInNamespace: number | null;
  /** Command line of the visible, live holder. */
  argv: string[] | null;
  /**
   * Processes holding this lock through a descriptor, looked up only when the
   * kernel's pid does not name a live process (OFD locks, flock locks whose
   * taker exited after passing the descriptor on); null when not looked up.
   */
  descriptors: DescriptorProcess[] | null;
}

/** The owner record's pid, checked only where that pid means something. */
export interface RecordProcessView {
  pid: number;
  /** `here` when the pid belongs to our pid namespace on this boot; otherwise it was not checked. */
  scope: RecordScope;
  /** null when it cannot be known from here. */
  alive: boolean | null;
  /** The pid is alive but belongs to a different process (start time differs). */
  recycled: boolean;
}

/** One holder of a lease (src/lease/): the process behind its token's liveness byte. */
export interface LeaseHolderView {
  /** The holder's token (a decimal string: JSON has no bigint). */
  token: string;
  /** The process holding it, from the descriptor scan; null when not found (another pid namespace, no scan). */
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

/** What is known about one lock file. */
export interface LockInspection {
  /** Absolute path of the lock file. */
  path: string;
  /** Whether a file exists at the path (it need not be a regular file). */
  exists: boolean;
  /** True when the kernel reports a lock (state `held` or `held-by-self`). */
  held: boolean;
  state: LockState;
  /** Kernel locks on the file, from /proc/locks cross-checked with a probe. */
  holders: LockHolder[];
  /** Processes blocked waiting for the lock (from /proc/locks). */
  waiters: number;
  /** The owner record in the file, or null (no file, empty, garbage, unreadable). */
  record: OwnerRecord | null;
  /** The record's process, when the record names one. */
  recordProcess: RecordProcessView | null;
  /**
   * Whether the record was written by the current holder; null when it
   * cannot be told (no holder, no record, or a holder the kernel does not name).
   */
  recordMatchesHolder: boolean | null;
  /** How long the current holder has held the lock, from its record; null unless the record matches the holder. */
  heldForMs: number | null;
  /** Caveats, in words (for instance why a probe or the record was skipped). */
  notes: string[];
  /** The lease the file carries (a file used by lease()), or null. */
  lease: LeaseView | null;
}
