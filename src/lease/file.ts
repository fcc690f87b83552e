// The lease file through one descriptor: the kernel locks a lease is made of,
// reading the token slot (under the fence, or racing writers and checked),
// telling our file from someone else's, and writing a grant durably.
import { fdatasyncSync, fstatSync, readSync, writeSync } from 'node:fs';
import { fromNative } from '../lock/errors.js';
import {
  EMPTY_SLOT,
  FENCE_BYTE,
  formatSlot,
  holderByte,
  LEASE_FILE_BYTES,
  parseSlot,
  RECORD_AREA_BYTES,
  SLOT_BYTES,
  SLOT_OFFSET,
  type TokenSlot,
} from '../lock/lease-layout.js';
import { isKernelLockRecord, parseRecord } from '../lock/owner-record.js';
import { Flag, native } from '../native/binding.js';
import { damagedSlotError, foreignFileError } from './errors.js';

/** One kernel lock a lease takes: flags for the addon, and a byte range. */
export interface LockSpec {
  flags: number;
  start: number;
  length: number;
}

/**
 * Membership: every lease participant (holders, superseded holders still
 * alive, waiters) holds a shared flock lock, so a plain exclusive lock() of
 * the default kind excludes them all and is excluded by them (flock and fcntl
 * locks are independent in the kernel). Plain ofd and posix locks cover the
 * whole file and meet the byte locks below instead.
 */
export const MEMBER: LockSpec = { flags: Flag.flock | Flag.shared, start: 0, length: 0 };
/** The fence: token changes and fenced writes happen under it. */
export const FENCE: LockSpec = { flags: Flag.ofd, start: FENCE_BYTE, length: 1 };

/** The liveness byte of lease `token`, exclusive: held by that lease's holder. */
export function holderLock(token: number): LockSpec {
  return { flags: Flag.ofd, start: holderByte(token), length: 1 };
}

/** A shared lock on lease `token`'s liveness byte: a waiter sleeps on it until the holder releases or dies. */
export function holderWait(token: number): LockSpec {
  return { flags: Flag.ofd | Flag.shared, start: holderByte(token), length: 1 };
}

/** Non-blocking attempt; throws system errors. */
export function tryTake(fd: number, spec: LockSpec, display: string): boolean {
  try {
    return native.tryLock(fd, spec.flags, spec.start, spec.length);
  } catch (error) {
    throw fromNative(error, display);
  }
}

/** Drops a lock this descriptor holds. */
export function drop(fd: number, spec: LockSpec): void {
  try {
    native.unlock(fd, spec.flags, spec.start, spec.length);
  } catch {
    // Unlocking a range we hold cannot fail short of EBADF; closing the
    // descriptor, which always follows eventually, drops it regardless.
  }
}

/** Whether lease `token` is alive: someone holds its liveness byte (a query; takes nothing). */
export function holderAlive(fd: number, token: number, display: string): boolean {
  try {
    // A read-lock query conflicts only with write locks, so waiters holding
    // their shared lock on the byte for an instant are not taken for a holder.
    return native.getLock(fd, Flag.ofd | Flag.shared, holderByte(token), 1) !== null;
  } catch (error) {
    throw fromNative(error, display);
  }
}

function readAt(fd: number, length: number, position: number): Buffer {
  const buffer = Buffer.alloc(length);
  let done = 0;
  while (done < length) {
    const n = readSync(fd, buffer, done, length - done, position + done);
    if (n === 0) break;
    done += n;
  }
  return buffer.subarray(0, done);
}

const LEGACY_MARKER_KEYS = new Set(['pid', 'createdAt', 'starttime', 'maxHoldMs']);

/** A record area kernel-lock may overwrite: blank, a kernel-lock record, or the runtime's legacy marker. */
function ourRecordArea(bytes: Buffer): boolean {
  if (isKernelLockRecord(parseRecord(bytes))) return true; // the common case: a lease or lock record
  if (bytes.every((b) => b === 0 || b === 0x20 || b === 0x0a)) return true;
  try {
    const value = JSON.parse(bytes.toString('utf8')) as unknown;
    if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
    const keys = Object.keys(value);
    return keys.every((k) => LEGACY_MARKER_KEYS.has(k)) && Number.isSafeInteger((value as { pid?: unknown }).pid);
  } catch {
    return false;
  }
}

/**
 * Reads the token slot while holding the fence (so no writer races the
 * read), after checking that the file is ours to write: empty, or a record
 * area of ours followed by nothing or by a valid slot. Throws, without
 * having written anything, for a file that holds other data or a damaged slot.
 */
export function readSlotUnderFence(fd: number, display: string): TokenSlot {
  const size = fstatSync(fd).size;
  if (size === 0) return EMPTY_SLOT;
  if (size > LEASE_FILE_BYTES) throw foreignFileError(display, size);
  const head = readAt(fd, Math.min(size, LEASE_FILE_BYTES), 0);
  if (!ourRecordArea(head.subarray(0, RECORD_AREA_BYTES))) throw foreignFileError(display, size);
  if (head.length <= SLOT_OFFSET) return EMPTY_SLOT;
  const slot = parseSlot(head.subarray(SLOT_OFFSET));
  if (slot === 'invalid') throw damagedSlotError(display);
  return slot ?? EMPTY_SLOT;
}

/** Reused by every racing read: this thread runs one at a time. */
const scratch = Buffer.alloc(SLOT_BYTES);

/** Torn reads (a writer in the middle of its pwrite) are retried this often before the slot is called damaged. */
const TORN_READ_RETRIES = 16;

/**
 * Reads the token slot without the fence: a reader may see half of a
 * concurrent write, which the slot's check catches; such a read is retried.
 * Returns null when the file has no slot (it was replaced by a fresh one).
 */
export function readSlotRacing(fd: number, display: string): TokenSlot | null {
  for (let attempt = 0; attempt <= TORN_READ_RETRIES; attempt++) {
    const length = readSync(fd, scratch, 0, SLOT_BYTES, SLOT_OFFSET);
    const slot = parseSlot(scratch.subarray(0, length));
    if (slot !== 'invalid') return slot;
  }
  throw damagedSlotError(display);
}

/**
 * Writes a grant: the new holder's owner record, then the slot with the new
 * token, in one pwrite; then fdatasync, so that a token handed out can never
 * be handed out again, not even after a power loss. Only ever called under
 * the fence. A SIGKILL part-way leaves the old slot or the new one (the slot
 * lies within one page, and the kernel copies a page whole); either way the
 * new token was not handed out yet.
 */
export function writeGrant(fd: number, record: string, slot: TokenSlot, display: string): void {
  const bytes = Buffer.alloc(LEASE_FILE_BYTES, 0x20);
  const recordLength = bytes.write(record, 0, RECORD_AREA_BYTES - 1, 'utf8');
  if (recordLength > 0 && bytes[recordLength - 1] === 0x0a) bytes[recordLength - 1] = 0x20;
  bytes[RECORD_AREA_BYTES - 1] = 0x0a;
  formatSlot(slot).copy(bytes, SLOT_OFFSET);
  try {
    let done = 0;
    while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, done);
    fdatasyncSync(fd);
  } catch (error) {
    const systemError = error as NodeJS.ErrnoException;
    systemError.message = `${systemError.message} (writing the lease token of ${display})`;
    throw systemError;
  }
}
