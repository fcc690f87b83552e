// The kernel's own list of every file lock on the system, /proc/locks, and
// the device arithmetic needed to match its lines to a file we stat(). The
// list is the only place the kernel names lock holders by pid; it shows
// each holder's pid as seen from the pid namespace of the /proc mount, -1 for
// OFD locks (they belong to an open file, not a process), and omits locks of
// processes that namespace cannot see at all (Linux >= 4.14): such locks are
// found only by probing (see lock/probe.ts).
//
// Reading it is not free, for us or for the host: the kernel regenerates
// the text for every read() of at most a page, walking its list of every
// lock on the system from the start each time, with the global file-lock
// semaphore held for writing, which stalls every flock()/fcntl() lock call
// on the host meanwhile (docs/DESIGN.md, "The cost of /proc/locks"). So
// it is read only when a holder must be named, in chunks off the event
// loop (steps.ts), and only the lines of the files asked about are parsed:
// their device field is found as text first.
import { readChunks, type Steps } from './steps.js';

/** The kernel's kinds of advisory file lock: flock(2), open-file-description (OFD) and classic POSIX fcntl(2). */
export type LockKind = 'flock' | 'ofd' | 'posix';
/** Exclusive (one holder; "WRITE" in /proc/locks) or shared (many readers; "READ"). */
export type LockMode = 'exclusive' | 'shared';
/** A byte range of an fcntl lock; `length` 0 means "to the end of the file, however it grows". */
export interface LockRange {
  start: number;
  length: number;
}

/** One lock as /proc/locks lists it. */
export interface ProcLock {
  /** The kernel's pid for the holder (in the /proc mount's pid namespace); -1 for OFD locks. */
  pid: number;
  kind: LockKind;
  mode: LockMode;
  /** Byte range for fcntl locks (length 0 = to end of file); undefined for flock. */
  range: LockRange | undefined;
  /** True for a waiter line ("->"): a process blocked on the lock, not a holder. */
  blocked: boolean;
}

/** "major:minor:inode" with major and minor in decimal: the key /proc/locks lines and stat() results share. */
export type FileKey = string;

/** Parsed /proc/locks, grouped by file. */
export type ProcLocks = Map<FileKey, ProcLock[]>;

const KIND_BY_NAME: Record<string, LockKind> = { FLOCK: 'flock', OFDLCK: 'ofd', POSIX: 'posix' };

/** The key for a device number as stat() reports it (Linux's user-space dev_t encoding) and an inode. */
export function fileKey(dev: bigint, ino: bigint): FileKey {
  // glibc's gnu_dev_major/gnu_dev_minor: 12+ bits of major and 20+ bits of
  // minor are interleaved in the 64-bit value.
  // The masks are bounded to 32 bits as in glibc: an unbounded ~0xff would
  // pull the major's high bits into the minor.
  const major = ((dev >> 8n) & 0xfffn) | ((dev >> 32n) & 0xfffff000n);
  const minor = (dev & 0xffn) | ((dev >> 12n) & 0xffffff00n);
  return `${major}:${minor}:${ino}`;
}

/** Parses one "MAJ:MIN:INODE" field of /proc/locks (major and minor in hex); null for "<none>:0". */
export function parseDeviceInode(field: string): FileKey | null {
  const match = /^([0-9a-f]+):([0-9a-f]+):(\d+)$/i.exec(field);
  if (match === null) return null;
  return `${BigInt(`0x${match[1]}`)}:${BigInt(`0x${match[2]}`)}:${BigInt(match[3]!)}`;
}

/**
 * Parses one line, e.g. `1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF`,
 * `2: OFDLCK ADVISORY  READ  -1 00:2e:123 0 EOF`, `3: POSIX  ADVISORY  WRITE
 * 99 08:02:1234 0 100` or a waiter `1: -> FLOCK ...`. Returns null for lines
 * that are not flock/OFD/POSIX locks (leases, delegations, garbage).
 */
export function parseProcLocksLine(line: string): { key: FileKey; lock: ProcLock } | null {
  const tokens = line.trim().split(/\s+/);
  if (tokens.length < 2 || !/^\d+:$/.test(tokens[0]!)) return null;
  let index = 1;
  const blocked = tokens[index] === '->';
  if (blocked) index++;
  const [type, , access, pidText, deviceInode, startText, endText] = tokens.slice(index);
  const kind = type === undefined ? undefined : KIND_BY_NAME[type];
  if (kind === undefined || deviceInode === undefined || endText === undefined) return null;
  if (access !== 'WRITE' && access !== 'READ') return null;
  const pid = Number(pidText);
  const key = parseDeviceInode(deviceInode);
  if (!Number.isSafeInteger(pid) || key === null) return null;
  let range: LockRange | undefined;
  if (kind !== 'flock') {
    const start = Number(startText);
    const end = endText === 'EOF' ? null : Number(endText);
    if (!Number.isSafeInteger(start) || (end !== null && !Number.isSafeInteger(end))) return null;
    range = { start, length: end === null ? 0 : end - start + 1 };
  }
  return { key, lock: { pid, kind, mode: access === 'WRITE' ? 'exclusive' : 'shared', range, blocked } };
}

/** Parses the whole text of /proc/locks. */
export function parseProcLocks(text: string): ProcLocks {
  const locks: ProcLocks = new Map();
  for (const line of text.split('\n')) {
    const parsed = parseProcLocksLine(line);
    if (parsed === null) continue;
    const list = locks.get(parsed.key);
    if (list === undefined) locks.set(parsed.key, [parsed.lock]);
    else list.push(parsed.lock);
  }
  return locks;
}

/** The device field /proc/locks prints for a key, e.g. "fd:01:5678": major and minor in hex, at least two digits each. */
export function procLocksField(key: FileKey): string {
  const [major, minor, inode] = key.split(':');
  const hex = (n: string | undefined): string =>
    BigInt(n ?? 0)
      .toString(16)
      .padStart(2, '0');
  return `${hex(major)}:${hex(minor)}:${inode}`;
}

/** Above this many files, lines are picked by one pattern over each chunk's text instead of one byte search per file. */
const MAX_NEEDLES = 8;
const DEVICE_FIELD = / ([0-9a-f]+:[0-9a-f]+:\d+) /g;
const NEWLINE = 0x0a;

/**
 * Picks the lines of a few files out of /proc/locks text (or of fdinfo
 * "lock:" lines) fed chunk by chunk; chunks need not end on a line
 * boundary. A line is decoded and parsed only when its device field is one
 * of the files': for a few files the field is searched as bytes in the
 * chunk itself, so the rest of a 550 KB /proc/locks never becomes a string.
 */
export class ProcLocksFilter {
  /** The lines found so far, by file. */
  readonly locks: ProcLocks = new Map();
  /** " MAJ:MIN:INO " as /proc/locks prints it, for each file. */
  private readonly needles = new Map<string, FileKey>();
  private readonly needleBytes: [Buffer, FileKey][] = [];
  private carry = '';

  constructor(keys: Iterable<FileKey>) {
    for (const key of keys) this.needles.set(procLocksField(key), key);
    for (const [field, key] of this.needles) this.needleBytes.push([Buffer.from(` ${field} `, 'latin1'), key]);
  }

  /** Forgets the lines found and any partial line, to filter another text for the same files. */
  reset(): void {
    this.locks.clear();
    this.carry = '';
  }

  /** Feeds the next chunk. It is not kept: it may be a reused buffer. */
  push(chunk: Buffer): void {
    const end = chunk.lastIndexOf(NEWLINE);
    if (end < 0) {
      this.carry += chunk.toString('latin1');
      return;
    }
    let start = 0;
    if (this.carry !== '') {
      // The line the previous chunk began.
      start = chunk.indexOf(NEWLINE) + 1;
      this.scanText(this.carry + chunk.toString('latin1', 0, start));
    }
    this.scanBytes(chunk, start, end + 1);
    this.carry = chunk.toString('latin1', end + 1);
  }

  /** Ends the input (a last line without a newline counts) and returns the lines found. */
  end(): ProcLocks {
    if (this.carry !== '') this.scanText(`${this.carry}\n`);
    this.carry = '';
    return this.locks;
  }

  /** Scans the complete lines in chunk[start, end). */
  private scanBytes(chunk: Buffer, start: number, end: number): void {
    if (start >= end) return;
    if (this.needles.size > MAX_NEEDLES) {
      this.scanText(chunk.toString('latin1', start, end));
      return;
    }
    for (const [needle, key] of this.needleBytes) {
      for (
        let at = chunk.indexOf(needle, start);
        at !== -1 && at < end;
        at = chunk.indexOf(needle, at + needle.length)
      ) {
        const lineStart = Math.max(start, chunk.lastIndexOf(NEWLINE, at) + 1);
        this.add(chunk.toString('latin1', lineStart, chunk.indexOf(NEWLINE, at)), key);
      }
    }
  }

  /** Scans complete lines of text. */
  private scanText(text: string): void {
    if (this.needles.size > MAX_NEEDLES) {
      for (const match of text.matchAll(DEVICE_FIELD)) {
        const key = this.needles.get(match[1]!);
        if (key !== undefined) this.addLineAt(text, match.index!, key);
      }
      return;
    }
    for (const [field, key] of this.needles) {
      const needle = ` ${field} `;
      for (let at = text.indexOf(needle); at !== -1; at = text.indexOf(needle, at + needle.length)) {
        this.addLineAt(text, at, key);
      }
    }
  }

  private addLineAt(text: string, at: number, key: FileKey): void {
    this.add(text.slice(text.lastIndexOf('\n', at) + 1, text.indexOf('\n', at)), key);
  }

  private add(line: string, key: FileKey): void {
    // In /proc/<pid>/fdinfo/<fd> the same lines follow a "lock:" tag.
    const parsed = parseProcLocksLine(line.startsWith('lock:') ? line.slice(5) : line);
    // The search found the field; the parser confirms it is the device column.
    if (parsed === null || parsed.key !== key) return;
    const list = this.locks.get(key);
    if (list === undefined) this.locks.set(key, [parsed.lock]);
    else list.push(parsed.lock);
  }
}

/**
 * Reads /proc/locks for the files in `keys` only: chunk by chunk (each
 * read() is one kernel walk of at most a page), filtering as the text
 * arrives. Null where it does not exist or cannot be read (not Linux, no /proc).
 */
export function* readKernelLocks(keys: ReadonlySet<FileKey>): Steps<ProcLocks | null> {
  if (process.platform !== 'linux') return null;
  const filter = new ProcLocksFilter(keys);
  if (keys.size === 0) return filter.locks;
  const complete = yield* readChunks('/proc/locks', (chunk) => filter.push(chunk));
  return complete ? filter.end() : null;
}

/**
 * The kernel's locks on the files an inspection asks about, read from
 * /proc/locks at most once per batch of files: scan() names every file up
 * front and pays for one read.
 */
export class KernelLocks {
  /** When the read each file's lines come from ended (performance.now()). */
  private readonly covered = new Map<FileKey, number>();
  private readonly locks: ProcLocks = new Map();
  private refreshed = false;
  /** False once /proc/locks could not be read (not Linux, no /proc): holders then come from probing alone. */
  readable = process.platform === 'linux';

  /** Reads /proc/locks once for those of `keys` not read yet. */
  *load(keys: Iterable<FileKey>): Steps<void> {
    const missing = new Set([...keys].filter((key) => !this.covered.has(key)));
    if (missing.size === 0 || !this.readable) return;
    const read = yield* readKernelLocks(missing);
    const readAt = performance.now();
    if (read === null) {
      this.readable = false;
      return;
    }
    for (const key of missing) {
      this.covered.set(key, readAt);
      this.locks.set(key, read.get(key) ?? []);
    }
  }

  /** The kernel's locks on one file (read now if that file was not loaded). */
  *of(key: FileKey): Steps<ProcLock[]> {
    yield* this.load([key]);
    return this.locks.get(key) ?? [];
  }

  /** Milliseconds since the read that one file's lines come from ended; 0 when never read. */
  ageOf(key: FileKey): number {
    const at = this.covered.get(key);
    return at === undefined ? 0 : performance.now() - at;
  }

  /**
   * Reads the files' locks again, for a probe that contradicts a list read
   * earlier (a long scan probes its last file well after its one read): once
   * per context, for every file loaded so far, so that a scan of many files
   * held from another container costs two reads of /proc/locks, not one per file.
   */
  *refresh(key: FileKey): Steps<ProcLock[]> {
    if (!this.refreshed) {
      this.refreshed = true;
      const keys = [...this.covered.keys(), key];
      this.covered.clear();
      yield* this.load(keys);
    }
    return yield* this.of(key);
  }
}
