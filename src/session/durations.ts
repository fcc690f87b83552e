// The runtime's duration options and their defaults. Invalid values fall
// back to the default instead of throwing, exactly as the legacy module did,
// because the runtime passes through whatever its configuration holds.

/** Acquisition timeout when none (or an invalid one) is given. */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Age after which a legacy marker is considered abandoned by legacy processes. */
export const DEFAULT_STALE_MS = 30 * 60 * 1000;
/** Longest a lock may be held before the watchdog force-releases it. */
export const DEFAULT_MAX_HOLD_MS = 5 * 60 * 1000;
/** Grace added to a run's timeout to get its lock's maximum hold. */
export const DEFAULT_TIMEOUT_GRACE_MS = 2 * 60 * 1000;
/** Upper bound of any hold (just below setTimeout's 2^31 - 1 ms limit). */
export const MAX_LOCK_HOLD_MS = 2_147_000_000;

/** A positive number of milliseconds, or `fallback` (Infinity only when allowed). */
export function resolvePositiveMs(value: unknown, fallback: number, options: { allowInfinity?: boolean } = {}): number {
  if (typeof value !== 'number' || Number.isNaN(value) || value <= 0) return fallback;
  if (value === Number.POSITIVE_INFINITY) return options.allowInfinity ? value : fallback;
  return value;
}

/**
 * The maximum hold for a lock taken by a run with timeout `timeoutMs`:
 * max(minMs, timeoutMs + graceMs), capped at 2 147 000 000 ms; an infinite
 * timeout gives the cap. Defaults: minMs 5 min, graceMs 2 min.
 */
export function resolveSessionLockMaxHoldFromTimeout(params: {
  timeoutMs: number;
  graceMs?: number;
  minMs?: number;
}): number {
  const minMs = resolvePositiveMs(params.minMs, DEFAULT_MAX_HOLD_MS);
  const timeoutMs = resolvePositiveMs(params.timeoutMs, minMs, { allowInfinity: true });
  if (timeoutMs === Number.POSITIVE_INFINITY) return MAX_LOCK_HOLD_MS;
  const graceMs = resolvePositiveMs(params.graceMs, DEFAULT_TIMEOUT_GRACE_MS);
  return Math.min(MAX_LOCK_HOLD_MS, Math.max(minMs, timeoutMs + graceMs));
}
