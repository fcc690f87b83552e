// kernel-lock: kernel-owned file locks for Node.js.

export type { LockSyncOptions, TryLockOptions } from './acquire.js';
export { lock, lockSync, tryLock, tryLockSync, withLock } from './acquire.js';
export type { SystemError } from './errors.js';
export { AbortError, ELOCKED, LockTimeoutError } from './errors.js';
export { LockHandle } from './handle.js';
export type {
  DescriptorProcess,
  InspectOptions,
  KeptReason,
  LockHolder,
  LockInspection,
  LockState,
  RecordProcessView,
  RecordScope,
  ScanOptions,
  SweepOptions,
  SweepOutcome,
  SweepResult,
  SweptKept,
} from './inspect/index.js';
export {
  describeInspection,
  inspect,
  inspectSync,
  scan,
  scanSync,
  sweep,
  sweepFile,
  sweepSync,
} from './inspect/index.js';
export type { LockKind, LockMode, LockOptions, LockRange } from './options.js';
export type { OwnerRecord } from './owner-record.js';
export { parseRecord, RECORD_FORMAT } from './owner-record.js';
