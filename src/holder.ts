// Describes who holds a lock, for the message of a timeout error. Reads the
// owner record, which is only a hint: the kernel decided the lock was busy.
import { fstatSync, readSync, statSync } from 'node:fs';
import { inodeKey } from './held-locks.js';
import type { LockRequest } from './options.js';
import { MAX_RECORD_BYTES, type OwnerRecord, parseRecord, readRecord } from './owner-record.js';
import { posixDescriptor } from './posix-table.js';

/** A holder description: the text appended to the timeout message, and the data behind it. */
export interface HolderDescription {
  detail: string;
  holder: unknown;
}

/** Printable form of an owner label: control characters removed, length bounded. */
export function printable(text: string, max = 120): string {
  const clean = text.replace(/[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g, '');
  return clean.length > max ? `${clean.slice(0, max - 1)}…` : clean;
}

function recordFromOwnDescriptor(path: string | Buffer): OwnerRecord | null | undefined {
  // Opening and closing a second descriptor on a file this process holds a
  // POSIX lock on would drop that lock; read through the held one instead.
  try {
    const st = statSync(path, { throwIfNoEntry: false });
    if (st === undefined) return null;
    const fd = posixDescriptor(inodeKey(st.dev, st.ino));
    if (fd === undefined) return undefined;
    fstatSync(fd);
    const buffer = Buffer.alloc(MAX_RECORD_BYTES);
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    return parseRecord(buffer.subarray(0, length));
  } catch {
    return null;
  }
}

/** Reads what the lock file says about its holder and formats it. */
export async function describeHolder(req: LockRequest): Promise<HolderDescription> {
  const own = recordFromOwnDescriptor(req.path);
  const record = own === undefined ? await readRecord(req.path) : own;
  if (record === null || record.pid === undefined) {
    return { detail: 'held by another process (no owner record)', holder: { pid: null, record } };
  }
  const owner = record.owner !== undefined ? `, owner "${printable(record.owner)}"` : '';
  return { detail: `held by pid ${record.pid} (per its owner record${owner})`, holder: { pid: record.pid, record } };
}
