// scan(): inspect every lock file in a directory against ONE read of
// /proc/locks and at most one descriptor scan, so the cost of a scan grows
// with the number of files, not with the number of files times the number
// of locks on the host.
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { finishInspections, type InspectOptions, inspectPending, newContext } from './inspect.js';
import type { LockInspection } from './types.js';

/** Options of scan(). */
export interface ScanOptions extends InspectOptions {
  /** Only names ending with this are inspected. Default '.lock'. */
  suffix?: string;
}

/** The names in `dir` ending with `suffix`, sorted; throws (ENOENT, ENOTDIR) like readdir. */
export function lockFileNames(dir: string, suffix: string): string[] {
  if (typeof suffix !== 'string')
    throw new TypeError(`kernel-lock: option suffix must be a string, got ${typeof suffix}`);
  return readdirSync(dir)
    .filter((name) => name.endsWith(suffix) && name.length > suffix.length)
    .sort();
}

/** Synchronous scan(). */
export function scanSync(dir: string, options: ScanOptions = {}): LockInspection[] {
  const names = lockFileNames(dir, options.suffix ?? '.lock');
  const ctx = newContext(options);
  const pending = names.map((name) => inspectPending(path.resolve(dir, name), ctx));
  return finishInspections(pending, ctx);
}

/** Inspects every `*<suffix>` file (default `*.lock`) in `dir`; see inspect(). */
export async function scan(dir: string, options?: ScanOptions): Promise<LockInspection[]> {
  return scanSync(dir, options);
}
