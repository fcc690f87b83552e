// The owner record: a diagnostic note inside the lock file saying who holds
// it. The kernel lock is the truth; the record only explains it, so it is
// written in place (no ftruncate on the hot path, see native/lock_ops.cc) and
// read defensively: bounded, never throwing, garbage meaning "no record".
import { read, readSync } from 'node:fs';
import { promisify } from 'node:util';
import { processIdentity } from '../proc/identity.js';
import type { LockKind, LockMode } from './options.js';
import { closeReader, openReader } from './reader.js';

/** Marks records written by kernel-lock (legacy markers lack it). */
export const RECORD_FORMAT = 'kernel-lock/1';

/** Reading stops here: a record is small, and a hostile file may not be. */
export const MAX_RECORD_BYTES = 4096;

/** Owner labels longer than this are cut in the record. */
export const MAX_OWNER_LENGTH = 256;

/** What a lock file says about its holder. Every field may be missing. */
export interface OwnerRecord {
  /** "kernel-lock/1" for records written by this library; undefined for legacy markers. */
  format?: string;
  pid?: number;
  createdAt?: string;
  starttime?: number;
  hostname?: string;
  bootId?: string;
  pidNamespace?: string;
  argv?: string[];
  owner?: string;
  kind?: LockKind;
  mode?: LockMode;
  threadId?: number;
}

/**
 * The argv field is cut to this many bytes of JSON. With the owner label
 * (at most 256 characters, ~1.5 KiB of JSON in the worst case) and the
 * fixed fields, a record then always fits the 4 KiB the native layer copies
 * and readers read; a longer one would be cut into invalid JSON.
 */
const MAX_ARGV_JSON_BYTES = 1536;

let staticPart: string | undefined;
let staticPid = 0;

function boundedArgv(argv: readonly string[]): string[] {
  const kept = [...argv];
  while (kept.length > 0 && Buffer.byteLength(JSON.stringify(kept)) > MAX_ARGV_JSON_BYTES) kept.pop();
  return kept;
}

function identityJson(): string {
  const id = processIdentity();
  if (staticPart === undefined || staticPid !== id.pid) {
    const fields: Record<string, unknown> = {
      format: RECORD_FORMAT,
      pid: id.pid,
      starttime: id.starttime,
      hostname: id.hostname,
      bootId: id.bootId,
      pidNamespace: id.pidNamespace,
      argv: boundedArgv(id.argv),
    };
    if (id.threadId !== null) fields.threadId = id.threadId;
    staticPart = JSON.stringify(fields).slice(0, -1);
    staticPid = id.pid;
  }
  return staticPart;
}

/**
 * The record for an acquisition by this process, as one line of JSON;
 * `now` (default: the clock) is its createdAt.
 */
export function formatRecord(
  kind: LockKind,
  mode: LockMode,
  owner: string | undefined,
  now: number = Date.now(),
): string {
  // The record is rebuilt at most once per millisecond per (kind, mode,
  // owner): Date#toISOString and JSON.stringify would otherwise be a visible
  // share of an uncontended acquisition, which costs ~10 µs in all.
  if (now === last.ms && kind === last.kind && mode === last.mode && owner === last.owner) return last.record;
  const label = owner === undefined ? '' : `,"owner":${JSON.stringify(owner.slice(0, MAX_OWNER_LENGTH))}`;
  const record = `${identityJson()},"createdAt":"${new Date(now).toISOString()}"${label},"kind":"${kind}","mode":"${mode}"}\n`;
  last = { ms: now, kind, mode, owner, record };
  return record;
}

let last: { ms: number; kind: LockKind; mode: LockMode; owner: string | undefined; record: string } = {
  ms: -1,
  kind: 'flock',
  mode: 'exclusive',
  owner: undefined,
  record: '',
};

const KINDS = new Set(['flock', 'ofd', 'posix']);
const MODES = new Set(['exclusive', 'shared']);

function isRecordObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses a record, keeping only fields of the right type. Returns null for
 * anything that is not a JSON object (empty, binary, truncated, an array).
 */
export function parseRecord(bytes: Buffer | string): OwnerRecord | null {
  const text = typeof bytes === 'string' ? bytes : bytes.toString('utf8');
  if (text.length > MAX_RECORD_BYTES * 4 || !/^\s*\{/.test(text)) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isRecordObject(value)) return null;
  const record: OwnerRecord = {};
  const str = (key: string): string | undefined =>
    typeof value[key] === 'string' ? (value[key] as string) : undefined;
  const int = (key: string): number | undefined =>
    Number.isSafeInteger(value[key]) ? (value[key] as number) : undefined;
  const assign = <K extends keyof OwnerRecord>(key: K, v: OwnerRecord[K] | undefined): void => {
    if (v !== undefined) record[key] = v;
  };
  assign('format', str('format'));
  assign('pid', int('pid'));
  assign('createdAt', str('createdAt'));
  assign('starttime', int('starttime'));
  assign('hostname', str('hostname'));
  assign('bootId', str('bootId'));
  assign('pidNamespace', str('pidNamespace'));
  assign('owner', str('owner'));
  assign('threadId', int('threadId'));
  const kind = str('kind');
  if (kind !== undefined && KINDS.has(kind)) record.kind = kind as LockKind;
  const mode = str('mode');
  if (mode !== undefined && MODES.has(mode)) record.mode = mode as LockMode;
  const argv = value.argv;
  if (Array.isArray(argv) && argv.every((a) => typeof a === 'string')) record.argv = argv as string[];
  return record;
}

/** True when the record was written by kernel-lock (not a legacy marker). */
export function isKernelLockRecord(record: OwnerRecord | null): boolean {
  return record?.format === RECORD_FORMAT;
}

const readAsync = promisify(read);

// Closing any descriptor of a file drops this process's POSIX locks on it,
// so the close goes through the process-wide posix table, which defers it
// while any thread of the process holds such a lock. Checked at close time:
// an acquisition may have happened while an asynchronous read was in flight.
// The descriptor is opened by the addon too (reader.ts: Node's tracking of
// worker descriptors must not see it opened and never closed).

/** Reads a lock file's record synchronously (at most MAX_RECORD_BYTES); null when missing or unreadable. */
export function readRecordSync(path: string | Buffer): OwnerRecord | null {
  const fd = openReader(path);
  if (fd < 0) return null;
  try {
    const buffer = Buffer.alloc(MAX_RECORD_BYTES);
    const length = readSync(fd, buffer, 0, buffer.length, 0);
    return parseRecord(buffer.subarray(0, length));
  } catch {
    return null;
  } finally {
    closeReader(fd);
  }
}

/** Reads a lock file's record (at most MAX_RECORD_BYTES); null when missing or unreadable. */
export async function readRecord(path: string | Buffer): Promise<OwnerRecord | null> {
  // The open is made on the loop, as every acquisition's is (O_NONBLOCK: a
  // FIFO does not hang it); the read goes to the threadpool.
  const fd = openReader(path);
  if (fd < 0) return null;
  try {
    const buffer = Buffer.alloc(MAX_RECORD_BYTES);
    const { bytesRead } = await readAsync(fd, buffer, 0, buffer.length, 0);
    return parseRecord(buffer.subarray(0, bytesRead));
  } catch {
    return null;
  } finally {
    closeReader(fd);
  }
}
