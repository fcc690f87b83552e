// The bottom TypeScript layer: loads the compiled addon (a prebuilt binary
// from prebuilds/, or a local build in build/Release) and describes its
// surface. Everything here is mechanism; src/proc, src/lock and the layers
// above them hold the policy.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A path as accepted by the addon: a string, or raw bytes for non-UTF-8 names. */
export type NativePath = string | Buffer;

/** An owner record as accepted by the addon: one line of JSON, as a string or as its UTF-8 bytes. */
export type RecordBytes = string | Buffer;

/** Bits of the `flags` argument; must match native/lock_ops.h. */
export const Flag = {
  flock: 0,
  ofd: 1,
  posix: 2,
  shared: 1 << 2,
  keepOnBusy: 1 << 3,
  unlink: 1 << 4,
  readOnly: 1 << 5,
  /** Lock an existing file with foreign content through a read-only descriptor (kernel-lock run). */
  readOnlyIfForeign: 1 << 6,
  /** finish/posixFinish: set the record's createdAt to the moment it is written (the grant). */
  stampRecord: 1 << 7,
  /** acquire: write the record last given to setRecord() (handed over once per change, not per acquisition). */
  storedRecord: 1 << 8,
} as const;

/**
 * Slots of the shared result array; must match OutSlot in native/addon.h.
 * `readOnly`: 0 writable, the errno (EACCES, EROFS) that forced a read-only
 * descriptor, or -1 when read-only was chosen (foreign content, Flag.readOnlyIfForeign).
 * `recordSkipped`: 1 when no record was written because the file holds foreign content.
 * `turn` (posix, busy): 1 when the caller has the inode's turn, 0 when it must wait for it.
 */
export const Out = { dev: 0, ino: 1, recordErr: 2, readOnly: 3, recordSkipped: 4, turn: 5 } as const;

/**
 * What a descriptor search found (native/fdinfo_search.h): for each descriptor whose fdinfo shows a lock
 * on a searched file, its process, its number and those of its lines that name a searched device field.
 */
export interface FdinfoSearchResult {
  /** False when a bound (descriptors, time) cut the search short, or /proc could not be listed. */
  complete: boolean;
  /** fdinfo files opened (or tried): what `maxDescriptors` bounds. */
  descriptors: number;
  pids: number[];
  fds: number[];
  /** Each descriptor's matching lines, each ending in a newline. */
  lines: string[];
}

export interface NativeBinding {
  readonly ofdSupported: boolean;
  readonly interruptSignal: number;
  /**
   * [alive, idle] waiter threads of the whole process: threads that run waits, and those of them running no wait
   * that is not yet joined (parked between waits, or about to park; native/waiter_threads.h: a parked thread exits
   * after 2 s without a wait).
   */
  waiterThreads(): [number, number];
  setOutBuffer(out: Float64Array): void;
  /** The record acquire() writes when its flags carry Flag.storedRecord; returns its token. */
  setRecord(record: Buffer): number;
  /**
   * fd when locked; -1 busy (closed); -(fd + 2) busy with the descriptor kept for a wait. With Flag.storedRecord
   * `record` is setRecord()'s token, and the result undefined (nothing done) when the addon's record has been
   * replaced since (another copy of this JavaScript in the thread).
   */
  acquire(path: NativePath, flags: number, start: number, length: number, record?: RecordBytes | number): number;
  /** The safe open alone (a lease takes several locks on one descriptor): fd, with out[Out.dev/ino/readOnly]. */
  open(path: NativePath): number;
  tryLock(fd: number, flags: number, start: number, length: number): boolean;
  unlock(fd: number, flags: number, start: number, length: number): void;
  getLock(fd: number, flags: number, start: number, length: number): [number, number, number, number] | null;
  finish(fd: number, path: NativePath, flags: number, start: number, length: number, record?: RecordBytes): boolean;
  verify(fd: number, path: NativePath): boolean;
  /** Always closes fd. 1 unlinked, 0 kept (a lease file is always kept), 2 kept for its foreign content, negative errno when unlink failed. */
  release(fd: number, path: NativePath, flags: number, start: number, length: number): number;
  /** Closes a descriptor this environment owns (from acquire), without dropping the process's posix locks. */
  close(fd: number): void;
  /** Closes any descriptor (one from openReader, say) without dropping the process's posix locks. */
  closeDescriptor(fd: number): void;
  /**
   * Opens an existing file read-only (O_NOFOLLOW, O_NONBLOCK, close-on-exec) for a probe or a record read: fd, or a
   * negative errno. Closed with closeDescriptor, never with node:fs (which would not have seen it opened).
   */
  openReader(path: NativePath): number;
  /**
   * What the file holds (native/record_content.h): kernel-lock writes its record only into `empty`, `record`,
   * `marker` and `lease` files, and unlinks only the first three.
   */
  contentKind(fd: number): 'empty' | 'record' | 'marker' | 'lease' | 'foreign';
  /** Kind posix, one call: entry fd when locked; -1 busy; with keepOnBusy -(fd + 2) and out[Out.turn]. */
  posixAcquire(path: NativePath, flags: number, start: number, length: number, record?: RecordBytes): number;
  /** Queues for the turn on a joined entry; callback gets 0 (the turn is ours) or -1 (cancelled). */
  posixWaitTurn(fd: number, callback: (status: number) => void): number;
  posixCancelTurn(id: number): void;
  /** Blocks for the turn: 0 ours, -1 timed out; throws EDEADLK when this thread would wait for itself. */
  posixWaitTurnSync(fd: number, timeoutMs: number): number;
  posixTryLock(fd: number, flags: number, start: number, length: number): boolean;
  posixFinish(
    fd: number,
    path: NativePath,
    flags: number,
    start: number,
    length: number,
    record?: RecordBytes,
  ): boolean;
  /** state: 1 the turn is ours, 2 possibly locked. */
  posixAbandon(fd: number, flags: number, start: number, length: number, state: number): void;
  posixRelease(fd: number, path: NativePath, flags: number, start: number, length: number): number;
  /** The process's posix descriptor for an inode, or -1. */
  posixDescriptor(dev: number, ino: number): number;
  /**
   * Starts a wait on a dedicated thread; callback gets (status, fd): 0 granted, -1 cancelled, -2 start over
   * (close fd, attempt again), or an errno. With `path` (kinds flock and ofd) the wait owns `fd` until the
   * callback, which may get another descriptor of the file `path` names by then; on a grant the thread has
   * verified it and written `record` (createdAt set to the grant time), and out[Out.dev/ino/readOnly/recordErr/
   * recordSkipped] describe it. `readOnly` is out[Out.readOnly] of the attempt that returned `fd`.
   */
  wait(
    fd: number,
    flags: number,
    start: number,
    length: number,
    callback: (status: number, fd: number) => void,
    path?: NativePath,
    record?: RecordBytes,
    readOnly?: number,
  ): number;
  cancelWait(id: number): void;
  /** 0 granted, -1 timed out. With `path`, a release in this process keeps the file for this wait. */
  waitSync(fd: number, flags: number, start: number, length: number, timeoutMs: number, path?: NativePath): number;
  /**
   * Reads /proc/<pid>/fdinfo/<fd> of `pids` (every process in /proc when null) on a waiter thread (never
   * the threadpool) for locks on the files whose device fields ("fd:01:5678", as /proc/locks prints them) are
   * given; reads at most `maxDescriptors` files and stops after `maxMs` (Infinity: no time bound). Returns an
   * id; `callback` gets the result through the wait hub. Throws (errno EAGAIN) when no thread can be started.
   */
  searchDescriptors(
    fields: readonly string[],
    pids: readonly number[] | null,
    maxDescriptors: number,
    maxMs: number,
    callback: (result: FdinfoSearchResult) => void,
  ): number;
  /** The same search on the calling thread (sync APIs may block). */
  searchDescriptorsSync(
    fields: readonly string[],
    pids: readonly number[] | null,
    maxDescriptors: number,
    maxMs: number,
  ): FdinfoSearchResult;
  /** [descriptors owned, waits (and descriptor searches) pending] in this thread's environment, and paths waited for in the whole process. */
  stats(): [number, number, number];
}

function packageRoot(): string {
  // The nearest directory with a package.json: src/native/binding.ts (tests)
  // and the bundled dist/*.cjs sit at different depths below the root.
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return dir;
}

// N-API version the addon is compiled against (NAPI_VERSION in binding.gyp).
const NAPI_VERSION = 8;

function load(): NativeBinding {
  if (process.platform === 'win32') {
    throw new Error(
      'kernel-lock does not support Windows: it is built on flock(2) and fcntl(2) advisory locks, which Windows lacks. ' +
        'Use it on Linux (WSL included), macOS or another Unix.',
    );
  }
  const require = createRequire(import.meta.url);
  const root = packageRoot();
  const nodeGypBuild = require('node-gyp-build') as { resolve(dir: string): string };
  // Resolve first, then load: "no binary fits" and "a binary was found but
  // cannot be loaded" (e.g. a prebuild newer than this system's glibc) need
  // different explanations.
  let file: string;
  try {
    file = nodeGypBuild.resolve(root);
  } catch (cause) {
    throw new Error(
      `kernel-lock: no native binary for this system. Looked for ${lookedFor(root)}; found none. ` + buildHint(),
      { cause },
    );
  }
  try {
    return require(file) as NativeBinding;
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    throw new Error(
      `kernel-lock: the native binary ${file} does not load on this system (${reason}). ` +
        `Looked for ${lookedFor(root)}. ` +
        buildHint(),
      { cause },
    );
  }
}

// Where node-gyp-build looks, in its order, for this very process.
function lookedFor(root: string): string {
  const libc = libcTag();
  const prebuild = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`, `kernel-lock.${libc}.node`);
  const local = path.join(root, 'build', 'Release', 'kernel_lock.node');
  const napi = process.versions.napi ?? 'none';
  return (
    `a local build ${local}, then a prebuilt ${prebuild} ` +
    `(platform ${process.platform}, arch ${process.arch}, libc ${libcDescription(libc)}, ` +
    `N-API ${NAPI_VERSION} needed / ${napi} offered by Node ${process.versions.node})`
  );
}

function buildHint(): string {
  return (
    'Build it from source: install python3, make and a C++17 compiler ' +
    '(Debian/Ubuntu: apt-get install python3 make g++; Alpine: apk add python3 make g++; macOS: xcode-select --install), ' +
    'then run `npm rebuild kernel-lock --build-from-source` in your project ' +
    '(or `npx node-gyp rebuild` inside node_modules/kernel-lock). ' +
    'If your npm blocks install scripts, allow them for kernel-lock ("allowScripts": {"kernel-lock": true} in package.json).'
  );
}

// The libc tag node-gyp-build and prebuildify use: Alpine means musl.
function libcTag(): 'glibc' | 'musl' {
  return process.platform === 'linux' && existsSync('/etc/alpine-release') ? 'musl' : 'glibc';
}

function libcDescription(tag: 'glibc' | 'musl'): string {
  if (process.platform !== 'linux') return 'system';
  const report = process.report?.getReport?.() as { header?: { glibcVersionRuntime?: string } } | undefined;
  const glibc = report?.header?.glibcVersionRuntime;
  return glibc ? `glibc ${glibc}` : tag;
}

/** The addon, loaded once per thread (the addon is context-aware). */
export const native: NativeBinding = load();

/** Results of the last native call that produced more than its return value. */
export const out = new Float64Array(8);
native.setOutBuffer(out);
