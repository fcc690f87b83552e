// kernel-lock: kernel-owned file locks for Node.js.

export type {
  DescriptorProcess,
  InspectOptions,
  KeptReason,
  LeaseHolderView,
  LeaseView,
  LockHolder,
  LockInspection,
  LockState,
  PathText,
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
export type { LeaseOptions, LeaseStaleReason, LeaseWriteOptions } from './lease/index.js';
export { ELEASESTALE, ENOTLEASEFILE, Lease, LeaseStaleError, lease } from './lease/index.js';
export type { LockSyncOptions, TryLockOptions } from './lock/acquire.js';
export { lock, lockSync, tryLock, tryLockSync, withLock } from './lock/acquire.js';
export type {
  EngineLock,
  EngineLockOptions,
  EngineTryLockOptions,
  KernelEngineLock,
  KernelEngineOptions,
  LockEngine,
} from './lock/engine.js';
export { kernelEngine } from './lock/engine.js';
export type { SystemError } from './lock/errors.js';
export { AbortError, ELOCKED, LockTimeoutError } from './lock/errors.js';
export { LockHandle } from './lock/handle.js';
export type { HolderSnapshot } from './lock/holder-snapshot.js';
export type { LockKind, LockMode, LockOptions, LockRange } from './lock/options.js';
export type { OwnerRecord } from './lock/owner-record.js';
export { parseRecord, RECORD_FORMAT } from './lock/owner-record.js';
