// scan(): inspect every lock file in a directory against ONE read of
// /proc/locks and at most one descriptor search, so the cost of a scan grows
// with the number of files, not with the number of files times the number
// of locks on the host. Names are read as bytes (names.ts).
import { runAsync, runSync, type Steps } from '../proc/steps.js';
import { type InspectOptions, inspectSteps } from './inspect.js';
import { lockFilePaths } from './names.js';
import type { LockInspection } from './types.js';

/** Options of scan(). */
export interface ScanOptions extends InspectOptions {
  /** Only names ending with this are inspected. Default '.lock'. */
  suffix?: string;
}

function* scanSteps(dir: string | Buffer, options: ScanOptions = {}): Steps<LockInspection[]> {
  return yield* inspectSteps(yield* lockFilePaths(dir, options.suffix ?? '.lock'), options);
}

/** Synchronous scan(). */
export function scanSync(dir: string | Buffer, options?: ScanOptions): LockInspection[] {
  return runSync(scanSteps(dir, options));
}

/** Inspects every `*<suffix>` file (default `*.lock`) in `dir`; see inspect(). Throws like readdir for a missing directory. */
export function scan(dir: string | Buffer, options?: ScanOptions): Promise<LockInspection[]> {
  return runAsync(scanSteps(dir, options));
}
