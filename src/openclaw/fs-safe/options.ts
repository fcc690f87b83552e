// Validation and defaults of the file-lock options, with fs-safe's messages
// and order (process defaults from configureFsSafeLocks, then the package
// defaults), and the one translation that matters: a retry schedule is not
// polled, it becomes the deadline of a single kernel wait.
import type { FileLockRetryOptions, FileLockStaleRecovery, FsSafeLockConfig, LegacyMarkerPolicy } from './types.js';

/** fs-safe's default staleMs. */
export const DEFAULT_STALE_MS = 30_000;
const DEFAULT_MIN_TIMEOUT = 50;
const DEFAULT_MAX_TIMEOUT = 1000;
const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

// Process-wide, across every copy of this module in the process, as fs-safe's
// configuration is per loaded copy but the runtime loads one.
const CONFIG_KEY = Symbol.for('kernel-lock.fs-safe.config');
const store = globalThis as { [CONFIG_KEY]?: FsSafeLockConfig };
store[CONFIG_KEY] ??= { staleRecovery: 'fail-closed' };

/** Sets process-wide defaults for staleRecovery, staleMs, timeoutMs and retry (merged into the current ones). */
export function configureFsSafeLocks(config: Partial<FsSafeLockConfig>): void {
  store[CONFIG_KEY] = { ...store[CONFIG_KEY]!, ...config };
}

/** The current process-wide defaults (a copy). */
export function getFsSafeLockConfig(): FsSafeLockConfig {
  const config = store[CONFIG_KEY]!;
  return { ...config, retry: config.retry ? { ...config.retry } : undefined };
}

function assertFiniteNonNegative(value: unknown, label: string): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new RangeError(`${label} must be a finite non-negative number`);
  }
}

/** fs-safe's retry validation, same messages. */
export function validateRetry(retry: FileLockRetryOptions): void {
  if (typeof retry !== 'object' || retry === null) throw new TypeError('lock retry must be an object');
  if (retry.retries !== undefined && (!Number.isSafeInteger(retry.retries) || retry.retries < 0)) {
    throw new RangeError('lock retry.retries must be a non-negative safe integer');
  }
  if (retry.factor !== undefined) assertFiniteNonNegative(retry.factor, 'lock retry.factor');
  if (retry.minTimeout !== undefined) assertFiniteNonNegative(retry.minTimeout, 'lock retry.minTimeout');
  if (retry.maxTimeout !== undefined) assertFiniteNonNegative(retry.maxTimeout, 'lock retry.maxTimeout');
  if (retry.minTimeout !== undefined && retry.maxTimeout !== undefined && retry.minTimeout > retry.maxTimeout) {
    throw new RangeError('lock retry.minTimeout must not exceed retry.maxTimeout');
  }
}

function validateMsOrInfinity(value: number | undefined, label: string): void {
  if (value === undefined || value === Number.POSITIVE_INFINITY) return;
  assertFiniteNonNegative(value, label);
}

/** fs-safe's compromiseCheckIntervalMs rule: 0 or omitted, or 1 … 2^31-1. */
export function validateCompromiseInterval(value: number | undefined): void {
  if (value === undefined || value === 0) return;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 1 || value > MAX_TIMER_DELAY_MS) {
    throw new RangeError(
      `lock compromiseCheckIntervalMs must be 0 or a finite number between 1 and ${MAX_TIMER_DELAY_MS}`,
    );
  }
}

/**
 * The longest a stock fs-safe acquisition with this schedule could wait
 * between its attempts: every delay at its maximum (jitter doubles a base,
 * capped at maxTimeout). Infinity when `retries` is omitted (fs-safe then
 * retries without bound). Using the maximum means a kernel-lock waiter never
 * gives up earlier than stock could have; it still wakes the moment the
 * holder releases or dies, so the longer bound costs nothing then.
 */
export function retryScheduleMs(retry: FileLockRetryOptions): number {
  if (retry.retries === undefined) return Number.POSITIVE_INFINITY;
  const minTimeout = retry.minTimeout ?? DEFAULT_MIN_TIMEOUT;
  const maxTimeout = retry.maxTimeout ?? DEFAULT_MAX_TIMEOUT;
  const factor = retry.factor ?? 1;
  let total = 0;
  for (let attempt = 0; attempt < retry.retries; attempt += 1) {
    const scaled = minTimeout === 0 ? 0 : minTimeout * factor ** attempt;
    const base = Math.min(maxTimeout, Math.max(minTimeout, scaled));
    const delay = Math.min(maxTimeout, Math.round(base * (retry.randomize ? 2 : 1)));
    if (factor <= 1 || base === maxTimeout || minTimeout === 0) {
      // From here on every delay is the same: add them in one step (retries may be huge).
      return total + (retry.retries - attempt) * delay;
    }
    total += delay;
  }
  return total;
}

/** The options an acquisition runs with, after defaults. */
export interface ResolvedOptions {
  /** How long to wait in the kernel, in ms (Infinity: no deadline). */
  waitMs: number;
  retry: FileLockRetryOptions;
  timeoutMs: number | undefined;
  staleMs: number;
  staleRecovery: FileLockStaleRecovery;
  legacyMarkers: LegacyMarkerPolicy;
}

interface RawOptions {
  retry?: FileLockRetryOptions;
  timeoutMs?: number;
  staleMs?: number;
  staleRecovery?: FileLockStaleRecovery;
  compromiseCheckIntervalMs?: number;
  legacyMarkers?: LegacyMarkerPolicy;
  payload?: unknown;
  lockPath?: unknown;
  reentrantOwner?: unknown;
  onCompromised?: unknown;
}

/** Applies defaults and validates, before anything touches the disk. */
export function resolveOptions(options: RawOptions, api: string): ResolvedOptions {
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${api}: options must be an object with at least { payload }`);
  }
  if (typeof options.payload !== 'function') {
    throw new TypeError(`${api}: options.payload must be a function returning the owner payload object`);
  }
  if (options.lockPath !== undefined && (typeof options.lockPath !== 'string' || options.lockPath.length === 0)) {
    throw new TypeError(`${api}: options.lockPath must be a non-empty string`);
  }
  if (options.reentrantOwner !== undefined && typeof options.reentrantOwner !== 'string') {
    throw new TypeError(`${api}: options.reentrantOwner must be a string`);
  }
  if (options.onCompromised !== undefined && typeof options.onCompromised !== 'function') {
    throw new TypeError(`${api}: options.onCompromised must be a function`);
  }
  const defaults = getFsSafeLockConfig();
  const retry = options.retry ?? defaults.retry ?? {};
  const timeoutMs = options.timeoutMs ?? defaults.timeoutMs;
  const staleMs = options.staleMs ?? defaults.staleMs ?? DEFAULT_STALE_MS;
  const staleRecovery = options.staleRecovery ?? defaults.staleRecovery;
  const legacyMarkers = options.legacyMarkers ?? 'respect';
  validateRetry(retry);
  validateMsOrInfinity(timeoutMs, 'lock timeoutMs');
  validateMsOrInfinity(staleMs, 'lock staleMs');
  validateCompromiseInterval(options.compromiseCheckIntervalMs);
  if (staleRecovery !== 'fail-closed' && staleRecovery !== 'remove-if-unchanged') {
    throw new TypeError(
      `lock staleRecovery must be "fail-closed" or "remove-if-unchanged", got ${JSON.stringify(staleRecovery)}`,
    );
  }
  if (legacyMarkers !== 'respect' && legacyMarkers !== 'ignore') {
    throw new TypeError(`lock legacyMarkers must be "respect" or "ignore", got ${JSON.stringify(legacyMarkers)}`);
  }
  const waitMs = Math.min(timeoutMs ?? Number.POSITIVE_INFINITY, retryScheduleMs(retry));
  return { waitMs, retry, timeoutMs, staleMs, staleRecovery, legacyMarkers };
}
