// Reading /proc without blocking the event loop, from code written once.
//
// Everything that reads /proc for an inspection or a timeout message is a
// generator that yields each read as a Step and receives its result; a
// driver performs the steps. runSync() makes synchronous calls (for
// inspectSync(), lockSync()'s timeout); runAsync() sends each read to
// libuv's threadpool, where it is one short system call (never a wait), and
// leaves the loop free in between; the search of every process's fdinfo
// for a lock's holders (thousands of reads) runs natively on a thread of its
// own (native/fdinfo_search.h). Pure computation between reads is cut
// into slices: at every 'checkpoint' runAsync() gives the loop back once the
// current slice has run for SLICE_MS. So the async API stays within about a
// millisecond per loop turn whatever the host's size (10,000 locks make
// /proc/locks 550 KB, and reading it synchronously took 11–30 ms), while
// the sync API keeps exactly the same logic.
import {
  close,
  closeSync,
  open,
  openSync,
  read,
  readdir,
  readdirSync,
  readlink,
  readlinkSync,
  readSync,
} from 'node:fs';
import { type FdinfoSearchResult, native } from '../native/binding.js';

/** One read a generator asks its driver for. Reads report failure as null (or an error object), never by throwing. */
export type Step =
  /** One read() of at most `max` bytes from the start of a file (a /proc file up to a page comes whole): Buffer | null. */
  | { readonly op: 'readFile'; readonly path: string; readonly max: number }
  /** Several readFile()s, run a few at a time on the threadpool: (Buffer | null)[]. */
  | { readonly op: 'readFiles'; readonly paths: readonly string[]; readonly max: number }
  /**
   * Reads each file and hands `visit` a view of what was read (reused:
   * not to be kept), for files whose read never waits (fdinfo): on the
   * loop, in slices, which saves three threadpool round trips per file.
   */
  | {
      readonly op: 'visitFiles';
      readonly paths: readonly string[];
      readonly max: number;
      readonly visit: (index: number, content: Buffer) => void;
    }
  /** Names in a directory: string[] | null; with `raw`, Buffer[] or the error (the caller reports it). */
  | { readonly op: 'readdir'; readonly path: string | Buffer; readonly raw: boolean }
  /** A symbolic link's target: string | null. */
  | { readonly op: 'readlink'; readonly path: string }
  /** Opens a file to read it in chunks: number (descriptor) | null. */
  | { readonly op: 'open'; readonly path: string }
  /** The next chunk, read into `buffer` (empty at the end): a view of `buffer` | null. */
  | { readonly op: 'readChunk'; readonly fd: number; readonly buffer: Buffer }
  /** Closes a descriptor from 'open'. */
  | { readonly op: 'close'; readonly fd: number }
  /**
   * Searches /proc/<pid>/fdinfo natively for lock lines naming `fields` (descriptors.ts): runAsync() on a
   * waiter thread, runSync() on the caller's: FdinfoSearchResult, or null when no thread could be started.
   */
  | {
      readonly op: 'searchFdinfo';
      readonly fields: readonly string[];
      readonly pids: readonly number[] | null;
      readonly maxDescriptors: number;
      /** A performance.now() time after which the search stops, incomplete. */
      readonly deadline: number | undefined;
    }
  /** A point where the async driver may give the loop back. */
  | { readonly op: 'checkpoint' };

/** A generator of steps that returns a T. */
export type Steps<T> = Generator<Step, T, unknown>;

/** Longest stretch of computation runAsync() runs before giving the loop back. */
export const SLICE_MS = 0.5;

/** Buffer of readChunks(): a seq file yields a page per read, a regular file fills it. */
const CHUNK_BYTES = 16_384;

/** Reads running at once in runAsync(): half of libuv's default threadpool, so the application's own I/O still flows. */
const CONCURRENCY = 2;

// Typed wrappers: `const text = yield* readFile(path)`.

/** One read() of at most `max` bytes from the start of `path` (a /proc file up to a page comes whole), or null. */
export function* readFile(path: string, max: number): Steps<Buffer | null> {
  return (yield { op: 'readFile', path, max }) as Buffer | null;
}

/** readFile() of each path, a few at a time on the threadpool. */
export function* readFiles(paths: readonly string[], max: number): Steps<(Buffer | null)[]> {
  return (yield { op: 'readFiles', paths, max }) as (Buffer | null)[];
}

/**
 * Reads each path (one read() of at most `max` bytes) and calls `visit`
 * with a view of the bytes read, which it must not keep; unreadable files
 * are skipped. runAsync() does this on the loop in slices of at most
 * SLICE_MS: only for files whose read never sleeps (/proc/<pid>/fdinfo/<fd>
 * is generated from the open file under spinlocks, without I/O), where a
 * threadpool round trip per open, read and close would cost more than the
 * read itself, and a buffer per file would feed the GC.
 */
export function* visitFiles(
  paths: readonly string[],
  max: number,
  visit: (index: number, content: Buffer) => void,
): Steps<void> {
  yield { op: 'visitFiles', paths, max, visit };
}

/** Names in a directory, decoded as UTF-8; null when it cannot be listed. */
export function* readdirNames(path: string): Steps<string[] | null> {
  return (yield { op: 'readdir', path, raw: false }) as string[] | null;
}

/** Names in a directory as raw bytes (file names need not be UTF-8); throws readdir's error (ENOENT, ENOTDIR...). */
export function* readdirRaw(path: string | Buffer): Steps<Buffer[]> {
  const result = (yield { op: 'readdir', path, raw: true }) as Buffer[] | Error;
  if (result instanceof Error) throw result;
  return result;
}

/** A symbolic link's target, or null. */
export function* readLink(path: string): Steps<string | null> {
  return (yield { op: 'readlink', path }) as string | null;
}

/**
 * Reads a file chunk by chunk, handing each chunk to `consume` as soon as
 * it arrives (a /proc seq file yields at most a page per read). The chunk
 * is a view of one buffer reused for every read: `consume` must not keep
 * it. Returns false when the file could not be opened or read.
 */
export function* readChunks(path: string, consume: (chunk: Buffer) => void): Steps<boolean> {
  const fd = (yield { op: 'open', path }) as number | null;
  if (fd === null) return false;
  // One buffer for the whole file: a read per page would otherwise allocate
  // hundreds of buffers for a busy host's /proc/locks, and feed the GC.
  const buffer = Buffer.allocUnsafe(CHUNK_BYTES);
  try {
    for (;;) {
      const chunk = (yield { op: 'readChunk', fd, buffer }) as Buffer | null;
      if (chunk === null) return false;
      if (chunk.length === 0) return true;
      consume(chunk);
    }
  } finally {
    yield { op: 'close', fd };
  }
}

/**
 * The native fdinfo search (native/fdinfo_search.h): what it found, or null
 * when the async driver could not start its thread (the caller falls back).
 */
export function* searchFdinfo(
  fields: readonly string[],
  pids: readonly number[] | null,
  maxDescriptors: number,
  deadline: number | undefined,
): Steps<FdinfoSearchResult | null> {
  return (yield { op: 'searchFdinfo', fields, pids, maxDescriptors, deadline }) as FdinfoSearchResult | null;
}

/** Milliseconds left before a search's deadline; Infinity without one. */
const msUntil = (deadline: number | undefined): number =>
  deadline === undefined ? Number.POSITIVE_INFINITY : deadline - performance.now();

/** Lets the async driver give the loop back if the current slice is used up. */
export function* checkpoint(): Steps<void> {
  yield { op: 'checkpoint' };
}

// ---- synchronous driver ----

function orNull<T>(run: () => T): T | null {
  try {
    return run();
  } catch {
    return null;
  }
}

/** Scratch space of synchronous reads: no buffer per file for the GC. */
let scratch = Buffer.allocUnsafe(4096);

/** One read() of at most `max` bytes into the scratch buffer; a view of it, or null. */
function readIntoScratch(path: string, max: number): Buffer | null {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return null;
  }
  try {
    if (scratch.length < max) scratch = Buffer.allocUnsafe(max);
    return scratch.subarray(0, readSync(fd, scratch, 0, max, null));
  } catch {
    return null;
  } finally {
    closeSync(fd);
  }
}

function readFileSyncBounded(path: string, max: number): Buffer | null {
  const view = readIntoScratch(path, max);
  return view === null ? null : Buffer.from(view);
}

function visitOne(step: Extract<Step, { op: 'visitFiles' }>, index: number): void {
  const view = readIntoScratch(step.paths[index]!, step.max);
  if (view !== null) step.visit(index, view);
}

function performSync(step: Step): unknown {
  switch (step.op) {
    case 'readFile':
      return readFileSyncBounded(step.path, step.max);
    case 'readFiles':
      return step.paths.map((p) => readFileSyncBounded(p, step.max));
    case 'visitFiles':
      for (let i = 0; i < step.paths.length; i++) visitOne(step, i);
      return undefined;
    case 'readdir':
      if (!step.raw) return orNull(() => readdirSync(step.path));
      try {
        return readdirSync(step.path, { encoding: 'buffer' });
      } catch (error) {
        return error;
      }
    case 'readlink':
      return orNull(() => readlinkSync(step.path));
    case 'open':
      return orNull(() => openSync(step.path, 'r'));
    case 'readChunk':
      return orNull(() => step.buffer.subarray(0, readSync(step.fd, step.buffer, 0, step.buffer.length, null)));
    case 'close':
      orNull(() => closeSync(step.fd));
      return undefined;
    case 'searchFdinfo':
      return native.searchDescriptorsSync(step.fields, step.pids, step.maxDescriptors, msUntil(step.deadline));
    case 'checkpoint':
      return undefined;
  }
}

/** Runs `steps` to completion with synchronous calls. */
export function runSync<T>(steps: Steps<T>): T {
  let input: unknown;
  for (;;) {
    const next = steps.next(input);
    if (next.done) return next.value;
    input = performSync(next.value);
  }
}

// ---- asynchronous driver ----

function readFileAsync(path: string, max: number, done: (result: Buffer | null) => void): void {
  open(path, 'r', (openError, fd) => {
    if (openError) {
      done(null);
      return;
    }
    const buffer = Buffer.allocUnsafe(max);
    read(fd, buffer, 0, max, null, (readError, n) => {
      // Copied at the length read: a few hundred bytes kept, not `max`.
      close(fd, () => done(readError ? null : Buffer.from(buffer.subarray(0, n))));
    });
  });
}

/** Runs `start` for every index, CONCURRENCY at a time; resolves with the results in order. */
function many<T>(count: number, start: (index: number, done: (result: T) => void) => void): Promise<T[]> {
  return new Promise((resolve) => {
    const results = new Array<T>(count);
    if (count === 0) {
      resolve(results);
      return;
    }
    let next = 0;
    let finished = 0;
    const launch = (): void => {
      const index = next++;
      start(index, (result) => {
        results[index] = result;
        if (++finished === count) resolve(results);
        else if (next < count) launch();
      });
    };
    for (let i = 0; i < Math.min(CONCURRENCY, count); i++) launch();
  });
}

/**
 * Performs a step on the threadpool, or for 'searchFdinfo' on a waiter thread (runAsync itself does
 * 'checkpoint' and 'visitFiles').
 */
function performAsync(step: Exclude<Step, { op: 'checkpoint' } | { op: 'visitFiles' }>): Promise<unknown> {
  return new Promise((resolve) => {
    switch (step.op) {
      case 'readFile':
        readFileAsync(step.path, step.max, resolve);
        return;
      case 'readFiles':
        many<Buffer | null>(step.paths.length, (i, done) => readFileAsync(step.paths[i]!, step.max, done)).then(
          resolve,
        );
        return;
      case 'readdir':
        if (step.raw) readdir(step.path, { encoding: 'buffer' }, (error, names) => resolve(error ?? names));
        else readdir(step.path, (error, names) => resolve(error ? null : names));
        return;
      case 'readlink':
        readlink(step.path, (error, target) => resolve(error ? null : target));
        return;
      case 'open':
        open(step.path, 'r', (error, fd) => resolve(error ? null : fd));
        return;
      case 'readChunk':
        read(step.fd, step.buffer, 0, step.buffer.length, null, (error, n) =>
          resolve(error ? null : step.buffer.subarray(0, n)),
        );
        return;
      case 'close':
        close(step.fd, () => resolve(undefined));
        return;
      case 'searchFdinfo':
        try {
          native.searchDescriptors(step.fields, step.pids, step.maxDescriptors, msUntil(step.deadline), resolve);
        } catch {
          resolve(null); // no thread to be had (EAGAIN): the caller searches on the loop instead
        }
        return;
    }
  });
}

const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Runs `steps` with every read on libuv's threadpool and the loop free in
 * between; computation is sliced at checkpoints so that no loop turn spends
 * more than about SLICE_MS in it.
 */
export async function runAsync<T>(steps: Steps<T>): Promise<T> {
  let input: unknown;
  let sliceStart = performance.now();
  for (;;) {
    const next = steps.next(input);
    if (next.done) return next.value;
    const step = next.value;
    input = undefined;
    if (step.op === 'checkpoint') {
      if (performance.now() - sliceStart >= SLICE_MS) {
        await nextTurn();
        sliceStart = performance.now();
      }
    } else if (step.op === 'visitFiles') {
      for (let i = 0; i < step.paths.length; i++) {
        if (performance.now() - sliceStart >= SLICE_MS) {
          await nextTurn();
          sliceStart = performance.now();
        }
        visitOne(step, i);
      }
    } else {
      input = await performAsync(step);
      sliceStart = performance.now();
    }
  }
}
