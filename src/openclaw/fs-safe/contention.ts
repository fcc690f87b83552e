// What a waiter learns when it gives up: fs-safe's `file_lock_timeout` with
// fs-safe's message head, followed by who holds the lock (the kernel's
// answer, which the core's LockTimeoutError already spells out). A caller's
// parsePayload is shown the holder's payload, as fs-safe's retry loop would
// have shown it the holder's sidecar before giving up.
import { closeSync, constants, openSync, readSync } from 'node:fs';
import { LockTimeoutError } from '../../lock/errors.js';
import { parseRecord } from '../../lock/owner-record.js';
import { FILE_LOCK_STALE, FILE_LOCK_TIMEOUT, FileLockError } from './errors.js';
import type { Claim } from './legacy-marker.js';
import type { LockPaths } from './paths.js';
import { payloadTextOf } from './retention.js';
import type { FileLockRetryOptions } from './types.js';

const HEAD_BYTES = 4096;

/** The payload text in the current holder's owner record, or null. */
function holderPayloadText(lockPath: string): string | null {
  let fd: number;
  try {
    fd = openSync(lockPath, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch {
    return null;
  }
  try {
    const buffer = Buffer.alloc(HEAD_BYTES);
    const length = readSync(fd, buffer, 0, HEAD_BYTES, 0);
    return payloadTextOf(parseRecord(buffer.subarray(0, length))?.owner);
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

function pidIn(message: string): number | null {
  const match = /held by (?:pid |this process \(pid )(\d+)/.exec(message);
  return match ? Number(match[1]) : null;
}

/**
 * Converts a failure of the kernel wait. A LockTimeoutError becomes
 * `file_lock_timeout` (after parsePayload has seen the holder's payload, so
 * its errors propagate as in fs-safe); anything else is rethrown unchanged.
 */
export function kernelTimeout(
  error: unknown,
  paths: LockPaths,
  parsePayload: ((raw: string) => unknown) | undefined,
  receiver: unknown,
): never {
  if (!(error instanceof LockTimeoutError)) throw error;
  if (parsePayload !== undefined) {
    const text = holderPayloadText(paths.lockPath);
    if (text !== null) Reflect.apply(parsePayload, receiver, [text]);
  }
  throw new FileLockError(FILE_LOCK_TIMEOUT, paths, error.message, { holderPid: pidIn(error.message), cause: error });
}

function markerDetail(marker: Claim): string {
  const age = Math.max(0, Math.round(Date.now() - marker.mtimeMs));
  const of = marker.pid === null ? '' : ` of pid ${marker.pid}`;
  if (marker.origin === 'retained') {
    return `a record retained (retainOnExit)${of}, whose holder never released it (no kernel lock; written ${age} ms ago)`;
  }
  return `a stock fs-safe marker${of} (no kernel lock; written ${age} ms ago)`;
}

/**
 * The timeout for a claim the caller's policy does not call stale: a live
 * stock fs-safe holder (it holds no kernel lock, only its marker), or a
 * retained record.
 */
export function markerTimeout(paths: LockPaths, marker: Claim, waitedMs: number): FileLockError {
  return new FileLockError(
    FILE_LOCK_TIMEOUT,
    paths,
    `still held after ${Math.round(waitedMs)} ms by ${markerDetail(marker)}: ${paths.lockPath}`,
    { holderPid: marker.pid },
  );
}

/** A stale claim that the caller's policy does not let us replace: fs-safe's fail-closed outcome. */
export function markerStale(paths: LockPaths, marker: Claim): FileLockError {
  return new FileLockError(
    FILE_LOCK_STALE,
    paths,
    `${markerDetail(marker)} is stale by the caller's policy and staleRecovery forbids replacing it: ${paths.lockPath}`,
    { holderPid: marker.pid },
  );
}

/**
 * The pause before looking at a claim again: fs-safe's own backoff, since
 * no kernel lock backs it and nothing could wake us. This is the only
 * polling in the module: against stock holders, and against a retained
 * record the caller's policy does not call stale (as fs-safe polls it).
 */
export function markerDelayMs(retry: FileLockRetryOptions, attempt: number, remainingMs: number): number {
  const minTimeout = retry.minTimeout ?? 50;
  const maxTimeout = retry.maxTimeout ?? 1000;
  const scaled = minTimeout === 0 ? 0 : minTimeout * (retry.factor ?? 1) ** attempt;
  const base = Math.min(maxTimeout, Math.max(minTimeout, scaled));
  const jitter = retry.randomize ? 1 + Math.random() : 1;
  // A floor of 10 ms: a zero delay would spin on the marker.
  const delay = Math.max(10, Math.min(maxTimeout, Math.round(base * jitter)));
  return Math.max(0, Math.min(delay, remainingMs));
}
