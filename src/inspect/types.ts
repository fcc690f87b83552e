// The shape of an inspection: a holder snapshot (lock/holder-snapshot.ts:
// what the kernel says about a lock file's holders, the owner record when
// it is theirs, a lease file's token and holders) with the rest of the
// story: the waiters, and the record's own process. Every field is plain
// JSON (no bigint, no Date), because `kernel-lock status --json` prints it
// as is.
import type { HolderSnapshot } from '../lock/holder-snapshot.js';
import type { RecordScope } from '../lock/record-process.js';

export type {
  DescriptorProcess,
  LeaseHolderView,
  LeaseView,
  LockHolder,
  LockState,
} from '../lock/holder-snapshot.js';

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

/** What is known about one lock file. */
export interface LockInspection extends HolderSnapshot {
  /** Processes blocked waiting for the lock (from /proc/locks). */
  waiters: number;
  /** The record's process, when the record names one. */
  recordProcess: RecordProcessView | null;
}
