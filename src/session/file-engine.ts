// The session lock on files: a fenced lease on `<session>.jsonl.lease`, the
// truth about who holds the session (liveness from the kernel, a fencing
// token that only grows), then the marker `<session>.jsonl.lock` that
// everyone else reads (marker.ts). Why two files: the marker must go away on
// release for old-version processes, and old-version processes remove it
// themselves when they judge it stale; a token kept in it would restart at 1.
// The lease file is never removed (docs/MIGRATION.md).
import { lease } from '../lease/acquire.js';
import type { Lease } from '../lease/lease.js';
import { LockTimeoutError } from '../lock/errors.js';
import type { LockHandle } from '../lock/handle.js';
import { type OwnerRecord, readRecord, readRecordSync } from '../lock/owner-record.js';
import { processIdentity } from '../proc/identity.js';
import type { SessionLockHolder } from './error.js';
import type { Grant } from './held.js';
import { formatAge, kernelHolder, leaseHolderPid } from './holder-detail.js';
import { replaceMarker, sessionMarker, takeMarker } from './marker.js';

/** The lease file of a session, beside its lock file. */
export function leasePathFor(key: string): string {
  return `${key}.lease`;
}

/** What an acquisition on files asks for. */
export interface FileHoldRequest {
  /** The normalized session file (`<realpath(dir)>/<basename>`). */
  key: string;
  /** `<key>.lock`. */
  lockPath: string;
  owner: string | undefined;
  /** Whether a waiter may supersede this hold past maxHoldMs. */
  fencing: boolean;
  maxHoldMs: number;
  /** Milliseconds to wait in all (Infinity: forever). */
  timeoutMs: number;
}

/** The acquisition timed out: who holds the session, from the kernel and the holder's record. */
export class FileHoldTimeout extends Error {
  readonly holder: SessionLockHolder;
  override readonly cause: LockTimeoutError;

  constructor(holder: SessionLockHolder, cause: LockTimeoutError) {
    super(cause.message);
    this.holder = holder;
    this.cause = cause;
  }
}

async function timedOut(error: LockTimeoutError, file: string, isLease: boolean): Promise<FileHoldTimeout> {
  const record = await readRecord(file);
  const pid = isLease ? leaseHolderPid(error.holder) : null;
  return new FileHoldTimeout(kernelHolder(pid === null ? error.holder : { pid }, record), error);
}

function recordedHolder(record: OwnerRecord | null): string {
  if (record?.pid === undefined) return 'a holder that left no record';
  const here = record.pidNamespace === undefined || record.pidNamespace === processIdentity().pidNamespace;
  return `pid ${record.pid}${here ? '' : ' (in another pid namespace)'}`;
}

/** One stderr line per supersession, from the successor: a takeover is never silent. */
function announce(held: Lease, previous: OwnerRecord | null, lockPath: string): void {
  const created = previous?.createdAt === undefined ? Number.NaN : Date.parse(previous.createdAt);
  const age = Number.isFinite(created) ? ` held for ${formatAge(Math.max(0, Date.now() - created))}` : '';
  process.stderr.write(
    `[session-write-lock] superseded lock${age} past its maxHoldMs by ${recordedHolder(previous)}: ${lockPath} ` +
      `(fencing token ${held.superseded} -> ${held.token}; its fenced writes are refused from now on)\n`,
  );
}

/**
 * Acquires the session on files: the lease (waiting, sleeping in the kernel,
 * while another hold is current; superseding it past its maxHoldMs if it
 * asked for `fencing`), then the marker. Rejects with FileHoldTimeout when
 * `timeoutMs` passes first; leaves nothing held on any failure.
 */
export async function acquireOnFiles(req: FileHoldRequest): Promise<Grant> {
  const started = performance.now();
  const remaining = (): number => Math.max(0, req.timeoutMs - (performance.now() - started));
  const leasePath = leasePathFor(req.key);
  let held: Lease;
  try {
    held = await lease(leasePath, {
      takeoverAfter: req.fencing ? req.maxHoldMs : Number.POSITIVE_INFINITY,
      timeout: req.timeoutMs,
      ...(req.owner === undefined ? {} : { owner: req.owner }),
    });
  } catch (error) {
    throw error instanceof LockTimeoutError ? await timedOut(error, leasePath, true) : error;
  }
  let marker: LockHandle | null;
  try {
    if (held.superseded === null) {
      // Free: only a plain lock() of the marker (no lease) can still hold it.
      marker = await takeMarker(req.lockPath, req.owner, remaining());
    } else {
      const previous = readRecordSync(req.lockPath);
      marker = await replaceMarker(req.lockPath, req.owner, held);
      announce(held, previous, req.lockPath);
    }
  } catch (error) {
    held.releaseSync();
    throw error instanceof LockTimeoutError ? await timedOut(error, req.lockPath, false) : error;
  }
  return {
    key: req.key,
    lockPath: req.lockPath,
    lockName: req.lockPath,
    lease: held,
    marker: marker === null ? null : sessionMarker(marker, req.lockPath),
    maxHoldMs: req.maxHoldMs,
    fencing: req.fencing,
  };
}
