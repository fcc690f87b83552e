// Validation of lease() options, done before anything touches the disk: a
// bad call fails with a TypeError or RangeError naming the option, the value
// and what is accepted.

import { normalizePath } from '../lock/options.js';
import { native } from '../native/binding.js';

/** Options of lease(). */
export interface LeaseOptions {
  /** Free-text label stored in the owner record (cut at 256 characters). */
  owner?: string;
  /**
   * Milliseconds this holder may keep the lease before a waiter may supersede
   * it (the waiter then takes a larger token and this lease's fenced writes
   * are refused). Default Infinity: never superseded while alive. A holder's
   * death frees its lease at once, whatever this says.
   */
  takeoverAfter?: number;
  /** Milliseconds to wait for the lease; Infinity (default) waits forever, 0 makes one attempt. */
  timeout?: number;
  /** Aborts a pending acquisition; the promise rejects with an AbortError. */
  signal?: AbortSignal;
}

/** Options of Lease#write() and Lease#writeSync(). */
export interface LeaseWriteOptions {
  /** Milliseconds to wait for the fence (held by other holders' fenced writes and takeovers). Default Infinity. */
  timeout?: number;
  /** Aborts a pending wait for the fence (write() only). */
  signal?: AbortSignal;
}

/** lease() options after validation. */
export interface LeaseRequest {
  path: string | Buffer;
  display: string;
  owner: string | undefined;
  /** Whole milliseconds, or Infinity. */
  takeoverAfter: number;
  timeout: number;
  signal: AbortSignal | undefined;
}

const LEASE_OPTIONS = new Set(['owner', 'takeoverAfter', 'timeout', 'signal']);
const WRITE_OPTIONS = new Set(['timeout', 'signal']);
/** The token slot stores at most 15 digits of milliseconds (about 31,000 years). */
const MAX_TAKEOVER_AFTER = 999_999_999_999_999;

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'number' || typeof value === 'boolean' || value == null) return String(value);
  return typeof value === 'function' ? 'a function' : `an ${Array.isArray(value) ? 'array' : 'object'}`;
}

function checkKeys(options: unknown, known: Set<string>): Record<string, unknown> {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`kernel-lock: options must be an object, got ${describe(options)}`);
  }
  for (const key of Object.keys(options)) {
    if (!known.has(key)) {
      throw new TypeError(
        `kernel-lock: unknown option ${JSON.stringify(key)}; known options: ${[...known].join(', ')}`,
      );
    }
  }
  return options as Record<string, unknown>;
}

function milliseconds(name: string, value: unknown, fallback: number, what: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number') {
    throw new TypeError(`kernel-lock: option ${name} must be a number of milliseconds, got ${describe(value)}`);
  }
  if (Number.isNaN(value) || value < 0) {
    throw new RangeError(`kernel-lock: option ${name} must be >= 0 milliseconds (${what}), got ${value}`);
  }
  return value;
}

function signalOf(value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  const signal = value as AbortSignal;
  if (
    typeof value !== 'object' ||
    value === null ||
    typeof signal.aborted !== 'boolean' ||
    typeof signal.addEventListener !== 'function'
  ) {
    throw new TypeError(`kernel-lock: option signal must be an AbortSignal, got ${describe(value)}`);
  }
  return signal;
}

/** Validates the arguments of lease(); throws before any side effect. */
export function normalizeLeaseOptions(pathInput: unknown, options: unknown): LeaseRequest {
  const { path, display } = normalizePath(pathInput);
  const opts = checkKeys(options, LEASE_OPTIONS);
  if (!native.ofdSupported) {
    const error = new Error(
      `kernel-lock: lease() needs open file description (OFD) locks, which this platform (${process.platform}) lacks; ` +
        'use lock() there',
    ) as Error & { code: string };
    error.code = 'ERR_KERNEL_LOCK_UNSUPPORTED';
    throw error;
  }
  const owner = opts.owner;
  if (owner !== undefined && typeof owner !== 'string') {
    throw new TypeError(`kernel-lock: option owner must be a string, got ${describe(owner)}`);
  }
  let takeoverAfter = milliseconds(
    'takeoverAfter',
    opts.takeoverAfter,
    Number.POSITIVE_INFINITY,
    'Infinity = never superseded while alive',
  );
  if (Number.isFinite(takeoverAfter)) {
    takeoverAfter = Math.ceil(takeoverAfter);
    if (takeoverAfter > MAX_TAKEOVER_AFTER) {
      throw new RangeError(
        `kernel-lock: option takeoverAfter must be at most ${MAX_TAKEOVER_AFTER} milliseconds or Infinity, got ${takeoverAfter}`,
      );
    }
  }
  const timeout = milliseconds(
    'timeout',
    opts.timeout,
    Number.POSITIVE_INFINITY,
    '0 = one attempt, Infinity = wait forever',
  );
  return { path, display, owner: owner as string | undefined, takeoverAfter, timeout, signal: signalOf(opts.signal) };
}

/** Validates the options of write() / writeSync(). */
export function normalizeWriteOptions(
  options: unknown,
  sync: boolean,
): { timeout: number; signal: AbortSignal | undefined } {
  const opts = checkKeys(options, WRITE_OPTIONS);
  if (sync && opts.signal !== undefined) {
    throw new TypeError(
      'kernel-lock: option signal is not accepted by writeSync(): a synchronous wait cannot be aborted',
    );
  }
  return {
    timeout: milliseconds('timeout', opts.timeout, Number.POSITIVE_INFINITY, 'Infinity = wait forever'),
    signal: signalOf(opts.signal),
  };
}
