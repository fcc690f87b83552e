// The asynchronous acquisition of a manager domain. One kernel wait with a
// deadline replaces fs-safe's create-retry-sleep loop: the waiter sleeps in
// the kernel and wakes when the holder releases or dies, in any pid
// namespace, so no pid is ever guessed and a held lock is never judged stale.
// What is judged by the caller's policy is a claim no kernel lock backs: a
// stock fs-safe marker, or a retained record (retainOnExit, retention.ts).
import { setTimeout as sleep } from 'node:timers/promises';
import { lock } from '../../lock/acquire.js';
import type { LockHandle } from '../../lock/handle.js';
import { kernelTimeout, markerDelayMs, markerStale, markerTimeout } from './contention.js';
import { FILE_LOCK_TIMEOUT, FileLockError, FsSafeError } from './errors.js';
import { addEntry, type DomainState, dropReference, type HeldEntry, verifyEntry } from './held.js';
import { judgeMarker, readClaim, type StalePolicy } from './legacy-marker.js';
import { type ResolvedOptions, resolveOptions } from './options.js';
import { type LockPaths, resolveLockPaths } from './paths.js';
import { evaluatePayload, MAX_LABEL_LENGTH } from './payload.js';
import { RETAINED_LABEL_PREFIX, retainedLabel, retentionGuardPath } from './retention.js';
import type { FileLockAcquireOptions, FileLockHandle } from './types.js';

/** A new handle on an entry: one reference, released at most once. */
export function handleFor(state: DomainState, entry: HeldEntry): FileLockHandle {
  let released = false;
  const release = async (): Promise<void> => {
    if (released) return;
    released = true;
    dropReference(state, entry);
  };
  return {
    lockPath: entry.lockPath,
    normalizedTargetPath: entry.normalizedTargetPath,
    verifyStillHeld: async () => !released && verifyEntry(entry),
    release,
    [Symbol.asyncDispose]: release,
  };
}

function stalePolicy<T extends Record<string, unknown>>(
  options: FileLockAcquireOptions<T>,
  paths: LockPaths,
  resolved: ResolvedOptions,
): StalePolicy {
  return {
    ...paths,
    staleMs: resolved.staleMs,
    staleRecovery: resolved.staleRecovery,
    parsePayload: options.parsePayload,
    shouldReclaim: options.shouldReclaim,
    shouldRemoveStaleLock: options.shouldRemoveStaleLock,
  };
}

/**
 * Another acquisition of this domain holds the same target through a
 * different lock file: fs-safe arbitrates by target inside a domain, so wait
 * for that entry to end (no polling: its end resolves a promise).
 */
async function waitForOtherLockPath(
  state: DomainState,
  paths: LockPaths,
  deadline: number,
  options: { reentrantOwner?: string | undefined },
): Promise<HeldEntry | null> {
  for (;;) {
    const held = state.held.get(paths.normalizedTargetPath);
    if (held === undefined || held.ended) return null;
    if (options.reentrantOwner !== undefined && held.reentrantOwner === options.reentrantOwner) return held;
    if (held.lockPath === paths.lockPath) return null; // the kernel lock arbitrates
    const remaining = deadline - performance.now();
    if (remaining <= 0) {
      throw new FileLockError(
        FILE_LOCK_TIMEOUT,
        paths,
        `held in this process (pid ${process.pid}) through ${held.lockPath}`,
        { holderPid: process.pid },
      );
    }
    const timer = Number.isFinite(remaining) ? sleep(remaining, undefined, { ref: false }) : new Promise(() => {});
    await Promise.race([held.done, timer]);
  }
}

/** What one admission attempt works with. */
interface Admission {
  paths: LockPaths;
  resolved: ResolvedOptions;
  policy: StalePolicy;
  judge: { stockMarkers: boolean; retained: boolean };
  /** retainOnExit: take the retention guard, judge retained records, mark ours. */
  retain: boolean;
  /** The payload's owner label: the retention guard's record says who holds it. */
  payloadLabel: string | undefined;
  /** The owner label of the lock file's record (marked when retained). */
  owner: string | undefined;
  started: number;
  deadline: number;
  parsePayload: ((raw: string) => unknown) | undefined;
  receiver: unknown;
}

/** The lock file, in the kernel, until the deadline; a timeout becomes `file_lock_timeout`. */
async function lockUntilDeadline(admission: Admission, path: string, owner: string | undefined): Promise<LockHandle> {
  try {
    return await lock(path, {
      timeout: Math.max(0, admission.deadline - performance.now()),
      removeOnRelease: true,
      ...(owner === undefined ? {} : { owner }),
    });
  } catch (error) {
    // parsePayload is shown the payload of the lock file's holder, also when
    // the retention guard was the lock we could not get: its holder is the
    // same process.
    kernelTimeout(error, admission.paths, admission.parsePayload, admission.receiver);
  }
}

/** A retainOnExit record could not be written: without it nothing is retained, so refuse. */
function unretainable(paths: LockPaths, handle: LockHandle): FsSafeError {
  const why =
    handle.recordSkipped === 'foreign-content'
      ? 'the file holds content that is not a lock record'
      : 'its write failed';
  return new FsSafeError(
    'helper-unavailable',
    `retainOnExit needs kernel-lock's owner record in ${paths.lockPath}, and ${why}; ` +
      'without it a holder that dies would leave nothing for its successors to judge. ' +
      'Make the lock file writable (or remove what is in it), or acquire without retainOnExit.',
    { cause: handle.recordError ?? undefined },
  );
}

/**
 * One attempt: the retention guard (retainOnExit only), the claim on the lock
 * file judged by the caller's policy, then the kernel lock. Returns the
 * grant, or how long to pause before the next attempt (a claim the policy
 * does not call stale); throws `file_lock_stale`, `file_lock_timeout` or any
 * other failure, with nothing left held.
 */
async function admit(
  admission: Admission,
  attempt: number,
): Promise<{ handle: LockHandle; guard: LockHandle | null } | { pauseMs: number }> {
  const { paths, retain } = admission;
  const guard = retain
    ? await lockUntilDeadline(admission, retentionGuardPath(paths.lockPath), admission.payloadLabel)
    : null;
  let handle: LockHandle | null = null;
  try {
    const claim = readClaim(paths.lockPath, admission.judge);
    if (claim !== null) {
      const verdict = await judgeMarker(claim, admission.policy);
      if (verdict === 'stale') throw markerStale(paths, claim);
      if (verdict === 'live') {
        const remaining = admission.deadline - performance.now();
        if (remaining <= 0) throw markerTimeout(paths, claim, performance.now() - admission.started);
        return { pauseMs: markerDelayMs(admission.resolved.retry, attempt, remaining) };
      }
    }
    handle = await lockUntilDeadline(admission, paths.lockPath, admission.owner);
    if (retain && (handle.recordError !== null || handle.recordSkipped !== null)) {
      const error = unretainable(paths, handle);
      handle.releaseSync();
      handle = null;
      throw error;
    }
    return { handle, guard };
  } finally {
    // Nothing is kept unless the lock was granted: the guard is not held
    // while pausing, so other retainOnExit acquisitions may judge meanwhile.
    if (handle === null) guard?.releaseSync();
  }
}

/** Acquires `targetPath` in `state`'s domain. */
export async function acquireInDomain<T extends Record<string, unknown>>(
  state: DomainState,
  targetPath: string,
  options: FileLockAcquireOptions<T>,
): Promise<FileLockHandle> {
  const resolved = resolveOptions(options, 'acquireFileLock');
  const paths = await resolveLockPaths(targetPath, options.lockPath, options.lockRoot, 'acquireFileLock');
  const retain = options.retainOnExit === true;
  const started = performance.now();
  const deadline = started + resolved.waitMs;
  const shared = await waitForOtherLockPath(state, paths, deadline, options);
  if (shared !== null) {
    if (retain && shared.retention === null) throw retentionUpgrade(paths, options.reentrantOwner);
    shared.refCount += 1;
    return handleFor(state, shared);
  }
  const label = await evaluatePayload(options, retain ? MAX_LABEL_LENGTH - RETAINED_LABEL_PREFIX.length : undefined);
  const owner = retain ? retainedLabel(label) : label;
  const admission: Admission = {
    paths,
    resolved,
    policy: stalePolicy(options, paths, resolved),
    judge: { stockMarkers: resolved.legacyMarkers === 'respect', retained: retain },
    retain,
    payloadLabel: label,
    owner,
    started,
    deadline,
    parsePayload: options.parsePayload,
    receiver: options,
  };
  for (let attempt = 0; ; attempt += 1) {
    const outcome = await admit(admission, attempt);
    if ('pauseMs' in outcome) {
      await sleep(outcome.pauseMs);
      continue;
    }
    const { handle, guard } = outcome;
    const entry = addEntry(state, {
      handle,
      paths,
      reentrantOwner: options.reentrantOwner,
      metadata: options.metadata ?? {},
      onCompromised: options.onCompromised,
      receiver: options,
      retention: guard === null ? null : { guard, label: owner! },
    });
    return handleFor(state, entry);
  }
}

/** A reentrant acquisition cannot add retention to a hold taken without it (fs-safe would upgrade it). */
function retentionUpgrade(paths: LockPaths, reentrantOwner: string | undefined): FsSafeError {
  return new FsSafeError(
    'helper-unavailable',
    `retainOnExit cannot be added to ${paths.lockPath}: this process already holds it for reentrant owner ` +
      `${JSON.stringify(reentrantOwner)} without retainOnExit, and a hold is retained only if its first ` +
      'acquisition asked for it. Pass retainOnExit to the first acquisition as well.',
  );
}
