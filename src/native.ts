// Loads the compiled addon (a prebuilt binary from prebuilds/, or a local
// build in build/Release) and describes its surface. Everything here is
// mechanism; the policy around it lives in the other modules.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** A path as accepted by the addon: a string, or raw bytes for non-UTF-8 names. */
export type NativePath = string | Buffer;

/** Bits of the `flags` argument; must match native/lock_ops.h. */
export const Flag = {
  flock: 0,
  ofd: 1,
  posix: 2,
  shared: 1 << 2,
  keepOnBusy: 1 << 3,
  unlink: 1 << 4,
  readOnly: 1 << 5,
} as const;

/** Slots of the shared result array; must match OutSlot in native/addon.cc. */
export const Out = { dev: 0, ino: 1, recordErr: 2, readOnly: 3, retries: 4 } as const;

export interface NativeBinding {
  readonly ofdSupported: boolean;
  readonly interruptSignal: number;
  setOutBuffer(out: Float64Array): void;
  /** fd when locked; -1 busy (closed); -(fd + 2) busy with the descriptor kept for a wait. */
  acquire(path: NativePath, flags: number, start: number, length: number, record?: string): number;
  open(path: NativePath): number;
  tryLock(fd: number, flags: number, start: number, length: number): boolean;
  unlock(fd: number, flags: number, start: number, length: number): void;
  getLock(fd: number, flags: number, start: number, length: number): [number, number, number, number] | null;
  finish(fd: number, path: NativePath, flags: number, start: number, length: number, record?: string): boolean;
  verify(fd: number, path: NativePath): boolean;
  /** Always closes fd. 1 unlinked, 0 kept, negative errno when unlink failed. */
  release(fd: number, path: NativePath, flags: number, start: number, length: number): number;
  close(fd: number): void;
  /** Starts a wait on a dedicated thread; callback gets 0 granted, -1 cancelled, or an errno. */
  wait(fd: number, flags: number, start: number, length: number, callback: (status: number) => void): number;
  cancelWait(id: number): void;
  /** 0 granted, -1 timed out. */
  waitSync(fd: number, flags: number, start: number, length: number, timeoutMs: number): number;
  /** [descriptors owned, waits pending] in this thread's environment. */
  stats(): [number, number];
}

function packageRoot(): string {
  // src/native.ts and dist/*.js both sit one level below the package root.
  return path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
}

function load(): NativeBinding {
  if (process.platform === 'win32') {
    throw new Error(
      'kernel-lock does not support Windows: it is built on flock(2) and fcntl(2) advisory locks, which Windows lacks. ' +
        'Use it on Linux, macOS or another Unix.',
    );
  }
  const require = createRequire(import.meta.url);
  const root = packageRoot();
  const nodeGypBuild = require('node-gyp-build') as { (dir: string): unknown; resolve(dir: string): string };
  try {
    return nodeGypBuild(root) as NativeBinding;
  } catch (cause) {
    const libc = libcName();
    throw new Error(
      `kernel-lock: no native binary for ${process.platform}-${process.arch} (libc ${libc}, N-API, Node ${process.versions.node}) ` +
        `in ${path.join(root, 'prebuilds')} or ${path.join(root, 'build', 'Release')}. ` +
        'Build it from source: install a C++ compiler, make and python3, then run `npm rebuild kernel-lock` ' +
        '(or `npx node-gyp rebuild` inside the package directory).',
      { cause },
    );
  }
}

function libcName(): string {
  const report = process.report?.getReport?.() as { header?: { glibcVersionRuntime?: string } } | undefined;
  const glibc = report?.header?.glibcVersionRuntime;
  return glibc ? `glibc ${glibc}` : 'musl or other';
}

/** The addon, loaded once per thread (the addon is context-aware). */
export const native: NativeBinding = load();

/** Results of the last native call that produced more than its return value. */
export const out = new Float64Array(8);
native.setOutBuffer(out);
