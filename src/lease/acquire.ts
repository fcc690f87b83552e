// lease(): acquisition. Every step either succeeds at once or sleeps in the
// kernel on a native thread; nothing polls.
//
//   1. open the lock file (created if missing), and join as a member
//      (shared flock: waits while a plain exclusive lock() holds the file);
//   2. take the fence; check the path still names our file and read the
//      token slot (refusing a file that holds someone else's data);
//   3. if the slot's lease is not alive (its liveness byte is unlocked: it
//      was released, or its holder died, in any pid namespace), or it has
//      been held past its own takeoverAfter: write token + 1 durably, lock
//      its liveness byte, drop the fence. Done;
//   4. otherwise drop the fence and sleep on the holder's liveness byte until
//      it is released or its holder dies (the kernel wakes us), or until its
//      takeover moment (a timer), then go back to 2.
import { describeInspection } from '../inspect/format.js';
import { inspect } from '../inspect/inspect.js';
import type { LockInspection } from '../inspect/types.js';
import { abortError, fromNative, LockTimeoutError } from '../lock/errors.js';
import { inodeKey } from '../lock/held-locks.js';
import { MAX_TOKEN, type TokenSlot } from '../lock/lease-layout.js';
import { formatRecord } from '../lock/owner-record.js';
import { native, Out, out } from '../native/binding.js';
import { notWritableError } from './errors.js';
import {
  drop,
  FENCE,
  holderAlive,
  holderLock,
  holderWait,
  MEMBER,
  readSlotUnderFence,
  tryTake,
  writeGrant,
} from './file.js';
import { Lease } from './lease.js';
import { type LeaseOptions, type LeaseRequest, normalizeLeaseOptions } from './options.js';
import { type WaitEnd, waitFor } from './wait.js';

interface Attempt {
  req: LeaseRequest;
  fd: number;
  key: string;
  started: number;
  deadline: number;
}

/** The moment (performance.now() clock) a waiter may supersede the lease in `slot`. */
function takeoverMoment(slot: TokenSlot): number {
  const after = slot.takeoverAfterMs;
  if (!Number.isFinite(after)) return Number.POSITIVE_INFINITY;
  // The grant time comes from another process's wall clock, in whole
  // milliseconds (cut, so one more keeps a takeover from coming early): bound
  // the wait by takeoverAfter itself, so a clock set back cannot stretch it.
  // A clock set forward can only bring a takeover forward: fencing keeps
  // that safe, it is only impolite.
  const remaining = Math.min(after + 1, Math.max(0, slot.grantedAtMs + 1 + after - Date.now()));
  return performance.now() + remaining;
}

async function failure(attempt: Attempt, end: Exclude<WaitEnd, 'granted' | 'takeover'>): Promise<Error> {
  const { req } = attempt;
  if (end === 'abort') return abortError(req.signal!, req.display);
  const waited = performance.now() - attempt.started;
  let holder: LockInspection | null = null;
  let detail: string;
  try {
    holder = await inspect(req.path);
    detail = describeInspection(holder);
  } catch (error) {
    // The inspection is a courtesy; the timeout itself is the error.
    detail = `held by another process (not inspectable: ${(error as Error).message})`;
  }
  return new LockTimeoutError(req.display, waited, detail, holder);
}

/** Step 3: the grant, under the fence. */
function grant(attempt: Attempt, slot: TokenSlot, superseded: number | null): Lease {
  const { req, fd } = attempt;
  const token = slot.token + 1;
  if (token > MAX_TOKEN) {
    throw new RangeError(`kernel-lock: the lease file ${req.display} has handed out its last token (${slot.token})`);
  }
  const acquiredAtMs = Date.now();
  const record = formatRecord('ofd', 'exclusive', req.owner);
  writeGrant(fd, record, { token, grantedAtMs: acquiredAtMs, takeoverAfterMs: req.takeoverAfter }, req.display);
  if (!tryTake(fd, holderLock(token), req.display)) {
    // Only a locker outside this protocol could hold a byte no lease used yet.
    throw new Error(`kernel-lock: the liveness byte of lease ${token} on ${req.display} is locked by a foreign locker`);
  }
  return new Lease({
    fd,
    path: req.path,
    display: req.display,
    key: attempt.key,
    token,
    owner: req.owner,
    takeoverAfter: req.takeoverAfter,
    acquiredAtMs,
    superseded,
  });
}

/** Steps 1-4 on one opened file; 'replaced' when the path no longer names it. */
async function acquireOn(attempt: Attempt): Promise<Lease | 'replaced'> {
  const { req, fd } = attempt;
  const limits = { deadline: attempt.deadline, takeoverAt: Number.POSITIVE_INFINITY, signal: req.signal };
  if (!tryTake(fd, MEMBER, req.display)) {
    if (req.timeout === 0) throw await failure(attempt, 'timeout');
    // A membership won in the race with a cancellation is dropped when the
    // descriptor closes, which follows every failure.
    const end = await waitFor(fd, MEMBER, limits, req.display, () => {});
    if (end !== 'granted') throw await failure(attempt, end === 'takeover' ? 'timeout' : end);
  }
  let watched = null as { token: number; takeoverAt: number } | null;
  for (;;) {
    if (!tryTake(fd, FENCE, req.display)) {
      if (req.timeout === 0) throw await failure(attempt, 'timeout');
      const end = await waitFor(fd, FENCE, limits, req.display, () => drop(fd, FENCE));
      if (end !== 'granted') throw await failure(attempt, end === 'takeover' ? 'timeout' : end);
    }
    let busy: number;
    try {
      if (!native.verify(fd, req.path)) return 'replaced';
      const slot = readSlotUnderFence(fd, req.display);
      if (slot.token === 0 || !holderAlive(fd, slot.token, req.display)) return grant(attempt, slot, null);
      if (watched?.token !== slot.token) watched = { token: slot.token, takeoverAt: takeoverMoment(slot) };
      if (performance.now() >= watched.takeoverAt) return grant(attempt, slot, slot.token);
      busy = slot.token;
    } finally {
      drop(fd, FENCE);
    }
    if (req.timeout === 0) throw await failure(attempt, 'timeout');
    const wait = holderWait(busy);
    const end = await waitFor(fd, wait, { ...limits, takeoverAt: watched.takeoverAt }, req.display, () =>
      drop(fd, wait),
    );
    if (end === 'granted') drop(fd, wait);
    else if (end !== 'takeover') throw await failure(attempt, end);
  }
}

async function acquire(req: LeaseRequest): Promise<Lease> {
  const started = performance.now();
  for (;;) {
    let fd: number;
    try {
      fd = native.open(req.path);
    } catch (error) {
      throw fromNative(error, req.display);
    }
    const readOnly = out[Out.readOnly]!;
    const key = inodeKey(out[Out.dev]!, out[Out.ino]!);
    let handed = false;
    try {
      if (readOnly !== 0) throw notWritableError(readOnly, req.display);
      const result = await acquireOn({ req, fd, key, started, deadline: started + req.timeout });
      if (result !== 'replaced') {
        handed = true;
        return result;
      }
    } finally {
      // Closing drops every lock this descriptor took.
      if (!handed) native.close(fd);
    }
  }
}

/**
 * Acquires a fenced lease on the lock file at `path` (created if missing;
 * its directory must exist). Resolves with a Lease whose token is larger
 * than every token handed out on this file before. Waits, sleeping in the
 * kernel, while another lease is alive: until it is released or its holder
 * dies (at once, in any pid namespace), or until it has been held for its
 * own takeoverAfter, when this acquisition supersedes it. A plain lock()
 * holder of the file is waited for and never superseded. Rejects with
 * LockTimeoutError (code ELOCKED, naming the holder) after `timeout`, or
 * AbortError when `signal` aborts.
 */
export function lease(path: string | Buffer, options?: LeaseOptions): Promise<Lease> {
  try {
    const req = normalizeLeaseOptions(path, options);
    if (req.signal?.aborted) throw abortError(req.signal, req.display);
    return acquire(req);
  } catch (error) {
    return Promise.reject(error);
  }
}
