// Every lock the bench compares, behind one shape: `acquire(path)` waits
// until the lock is held and returns `release()`. Async contenders return
// promises; sync ones block the thread. The C floor is not here: it is a
// separate program (bench/floor.c) driven by bench/run.mjs.
//
// Each contender also says HOW it waits, which decides what the bench can
// measure for it and explains the "n/a" cells of the table.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { requirePeer } from './peers.mjs';

const require = createRequire(import.meta.url);
const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(benchDir, '..');

/** How a contender waits for a busy lock. */
export const Wait = {
  kernelThread: 'sleeps in the kernel on a dedicated thread',
  blocksThread: 'sleeps in the kernel, blocking the calling JS thread',
  threadpool: 'sleeps in the kernel on a libuv threadpool thread',
  poll: 'polls with timers',
};

const OPEN_FLAGS = fs.constants.O_RDWR | fs.constants.O_CREAT;

// proper-lockfile has no blocking wait: it retries mkdir on a timer. This is
// a generous setting (5 ms first retry, at most 100 ms apart); its minimum
// stale threshold is 2 s, which bounds crash recovery from below.
const PROPER_OPTIONS = {
  realpath: false,
  stale: 2000,
  retries: { forever: true, minTimeout: 5, maxTimeout: 100, factor: 1.5, randomize: false },
};

/** fs-ext's non-blocking attempt: true when locked, false when busy. */
function tryFlock(flockSync, fd) {
  try {
    flockSync(fd, 'exnb');
    return true;
  } catch (error) {
    if (error.code === 'EAGAIN' || error.code === 'EWOULDBLOCK') return false;
    fs.closeSync(fd);
    throw error;
  }
}

const kernelLocks = new Map();
// KERNEL_LOCK_BENCH_DIST names another build of kernel-lock (an ESM entry
// whose package root holds its own build/Release) to measure a change;
// KERNEL_LOCK_BENCH_BASELINE adds a second build's contenders to the same
// run ("before"), for a before/after measured side by side.
const currentDist = process.env.KERNEL_LOCK_BENCH_DIST ?? path.join(root, 'dist', 'index.js');
export const baselineDist = process.env.KERNEL_LOCK_BENCH_BASELINE;
/** How the report names the baseline build (e.g. "main at a42ff6f"). */
export const baselineName = process.env.KERNEL_LOCK_BENCH_BASELINE_NAME ?? 'before';
async function kl(entry = currentDist) {
  const url = pathToFileURL(path.resolve(entry)).href;
  if (!kernelLocks.has(url)) kernelLocks.set(url, await import(url));
  return kernelLocks.get(url);
}

let legacy;
async function legacyModule() {
  if (legacy) return legacy;
  // bench/run.mjs bundles the real baseline (src/demo/legacy-marker.ts) into
  // node_modules/.cache when it exists; otherwise the stand-in in bench/ is used.
  const built = path.join(root, 'node_modules', '.cache', 'kernel-lock-bench', 'legacy-marker.mjs');
  const source = fs.existsSync(built) ? built : path.join(benchDir, 'legacy-marker-standin.mjs');
  const named = source === built ? 'src/demo/legacy-marker.ts' : path.relative(root, source);
  legacy = { ...(await import(pathToFileURL(source).href)), source: named };
  return legacy;
}

function kernelLockContender(api, kind, removeOnRelease, dist) {
  const mode = removeOnRelease ? 'remove' : 'keep';
  const opts = { kind, removeOnRelease };
  return {
    id: `${dist ? 'base-' : ''}kl-${api}-${kind}-${mode}`,
    label: `kernel-lock ${api === 'async' ? 'lock()' : 'lockSync()'} ${kind} ${mode}${dist ? ` (${baselineName})` : ''}`,
    lib: dist ? 'kernel-lock before' : 'kernel-lock',
    baseline: Boolean(dist),
    sync: api === 'sync',
    wait: api === 'async' ? Wait.kernelThread : Wait.blocksThread,
    keepsFile: !removeOnRelease,
    lockKind: kind,
    timeout: api === 'async' ? 'yes: timeout + AbortSignal' : 'yes: timeout',
    // The uncontended cycle as a user writes it, without the bench's wrapper.
    loadCycle:
      api === 'async'
        ? async () => {
            const { lock } = await kl(dist);
            return async (p) => {
              const handle = await lock(p, opts);
              await handle.release();
            };
          }
        : undefined,
    async load() {
      const { lock, lockSync } = await kl(dist);
      if (api === 'sync') {
        return (p) => {
          const handle = lockSync(p, opts);
          return () => handle.releaseSync();
        };
      }
      return async (p) => {
        const handle = await lock(p, opts);
        return () => handle.release();
      };
    },
  };
}

/** kind 'posix' (default options), measured only where the posix table's cost matters (8. many locks held). */
function posixContender(api, dist) {
  return { ...kernelLockContender(api, 'posix', false, dist), sections: ['heldMany'] };
}

/** All contenders, in table order. */
export const contenders = [
  kernelLockContender('async', 'flock', true),
  kernelLockContender('async', 'flock', false),
  kernelLockContender('async', 'ofd', true),
  kernelLockContender('async', 'ofd', false),
  kernelLockContender('sync', 'flock', true),
  kernelLockContender('sync', 'flock', false),
  kernelLockContender('sync', 'ofd', true),
  kernelLockContender('sync', 'ofd', false),
  {
    id: 'fs-ext-async',
    lockKind: 'flock',
    timeout: 'no: a blocked flock cannot be cancelled',
    label: 'fs-ext flock() async',
    lib: 'fs-ext',
    sync: false,
    wait: Wait.threadpool,
    keepsFile: true,
    note: 'bare flock: no verify, no record; a non-blocking attempt first, the pool only when busy',
    async load() {
      const { flock, flockSync } = requirePeer('fs-ext');
      return async (p) => {
        const fd = fs.openSync(p, OPEN_FLAGS);
        // A non-blocking first attempt on the calling thread, as
        // fs-native-extensions' tryLock and kernel-lock do: the threadpool
        // round trip is paid only when the lock is busy.
        if (!tryFlock(flockSync, fd)) {
          await new Promise((resolve, reject) => flock(fd, 'ex', (err) => (err ? reject(err) : resolve())));
        }
        return () => fs.closeSync(fd);
      };
    },
  },
  {
    id: 'fs-ext-sync',
    lockKind: 'flock',
    timeout: 'no: blocks the thread until granted',
    label: 'fs-ext flockSync()',
    lib: 'fs-ext',
    sync: true,
    wait: Wait.blocksThread,
    keepsFile: true,
    note: 'bare flock: no verify, no record',
    async load() {
      const { flockSync } = requirePeer('fs-ext');
      return (p) => {
        const fd = fs.openSync(p, OPEN_FLAGS);
        flockSync(fd, 'ex');
        return () => fs.closeSync(fd);
      };
    },
  },
  {
    id: 'fsx-async',
    lockKind: 'ofd',
    timeout: 'no: a blocked wait cannot be cancelled',
    label: 'fs-native-extensions tryLock/waitForLock',
    lib: 'fs-native-extensions',
    sync: false,
    // waitForLock starts a thread of its own per wait (uv_thread_create).
    wait: Wait.kernelThread,
    keepsFile: true,
    note: 'bare OFD lock: no verify, no record',
    async load() {
      const { tryLock, waitForLock } = require('fs-native-extensions');
      return async (p) => {
        const fd = fs.openSync(p, OPEN_FLAGS);
        if (!tryLock(fd)) await waitForLock(fd);
        return () => fs.closeSync(fd);
      };
    },
  },
  {
    id: 'fsx-sync',
    lockKind: 'ofd',
    timeout: 'no: blocks the thread until granted',
    label: 'fs-native-extensions waitForLockSync',
    lib: 'fs-native-extensions',
    sync: true,
    wait: Wait.blocksThread,
    keepsFile: true,
    note: 'bare OFD lock: no verify, no record',
    async load() {
      const { waitForLockSync } = require('fs-native-extensions');
      return (p) => {
        const fd = fs.openSync(p, OPEN_FLAGS);
        waitForLockSync(fd);
        return () => fs.closeSync(fd);
      };
    },
  },
  {
    id: 'os-lock',
    lockKind: 'posix',
    timeout: 'no: a blocked wait cannot be cancelled',
    label: 'os-lock lock() (POSIX fcntl)',
    lib: 'os-lock',
    sync: false,
    wait: Wait.threadpool,
    keepsFile: true,
    note: 'bare POSIX lock: no verify, no record; locks are per process',
    async load() {
      const { lock } = requirePeer('os-lock');
      return async (p) => {
        const fd = fs.openSync(p, OPEN_FLAGS);
        await lock(fd, { exclusive: true });
        return () => fs.closeSync(fd);
      };
    },
  },
  {
    id: 'proper-lockfile',
    lockKind: 'marker',
    timeout: 'retry count only (polling)',
    label: 'proper-lockfile (mkdir, polling)',
    lib: 'proper-lockfile',
    sync: false,
    wait: Wait.poll,
    keepsFile: false,
    staleAfterMs: PROPER_OPTIONS.stale,
    note: 'mkdir marker; retries 5..100 ms; stale >= 2 s',
    async load() {
      const lockfile = require('proper-lockfile');
      return async (p) => {
        const release = await lockfile.lock(p, PROPER_OPTIONS);
        return () => release();
      };
    },
  },
  {
    id: 'legacy-marker',
    lockKind: 'marker',
    timeout: 'yes (polling)',
    label: 'legacy O_EXCL marker (OpenClaw)',
    lib: 'legacy marker',
    sync: false,
    wait: Wait.poll,
    keepsFile: false,
    note: 'O_EXCL JSON marker; polls 50 ms..1 s; reclaims dead pid',
    async load() {
      const { acquireLegacyLock } = await legacyModule();
      return async (p) => {
        const handle = await acquireLegacyLock({ lockPath: p, timeoutMs: 600_000 });
        return () => handle.release();
      };
    },
  },
];

contenders.push(posixContender('async'), posixContender('sync'));

// The flock contenders (those the goals are judged on) and the posix ones
// from the baseline build, when one is given.
if (baselineDist) {
  for (const api of ['async', 'sync']) {
    for (const remove of [true, false]) contenders.push(kernelLockContender(api, 'flock', remove, baselineDist));
  }
  contenders.push(posixContender('async', baselineDist), posixContender('sync', baselineDist));
}

/** Which file the legacy baseline came from (for the report). */
export async function legacySource() {
  return (await legacyModule()).source;
}

export function contender(id) {
  const found = contenders.find((c) => c.id === id);
  if (!found) throw new Error(`unknown contender ${id}`);
  return found;
}
