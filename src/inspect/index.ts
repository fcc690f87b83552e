// Inspection: who holds a lock, from the kernel; scanning a directory; the safe sweep.

export type { PathText } from '../lock/path-text.js';
export type { RecordScope } from '../lock/record-process.js';
export { commandText, describeInspection, formatDuration, printable } from './format.js';
export { type InspectOptions, inspect, inspectSync } from './inspect.js';
export { type ScanOptions, scan, scanSync } from './scan.js';
export {
  type KeptReason,
  type SweepOptions,
  type SweepOutcome,
  type SweepResult,
  type SweptKept,
  sweep,
  sweepFile,
  sweepSync,
} from './sweep.js';
export type {
  DescriptorProcess,
  LeaseHolderView,
  LeaseView,
  LockHolder,
  LockInspection,
  LockState,
  RecordProcessView,
} from './types.js';
