// worker_threads: the addon is context-aware, and a terminated worker's
// environment teardown releases its locks and joins its waiter threads.
import { readlinkSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lock, tryLock } from '../../src/index.js';
import { fdCount, fixture, probeInChild, sleep, tempDir, threadCount } from '../helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir());
});
afterEach(() => cleanup());

function startWorker(file: string, options: object, announceWaitingMs?: number): Worker {
  return new Worker(fixture('core-worker.mjs'), { workerData: { path: file, options, announceWaitingMs } });
}

function message(worker: Worker, expected: string): Promise<void> {
  return new Promise((resolve, reject) => {
    worker.once('message', (m) => (m === expected ? resolve() : reject(new Error(`worker said ${m}`))));
    worker.once('error', reject);
  });
}

async function baseline(): Promise<{ fds: number; threads: number }> {
  await readFile(__filename); // libuv's pool threads are started lazily; start them first
  return { fds: fdCount(), threads: threadCount() };
}

/** Threads of a terminated worker may take a moment to be reaped by the kernel. */
async function settle(expected: { fds: number; threads: number }): Promise<{ fds: number; threads: number }> {
  for (let i = 0; i < 50; i++) {
    const now = { fds: fdCount(), threads: threadCount() };
    if (now.fds === expected.fds && now.threads === expected.threads) return now;
    await sleep(20);
  }
  return { fds: fdCount(), threads: threadCount() };
}

describe('worker_threads', () => {
  it.each(['flock', 'ofd', 'posix'] as const)('%s: a terminated worker leaves its lock free', async (kind) => {
    const file = path.join(dir, `w-${kind}.lock`);
    const before = await baseline();
    const worker = startWorker(file, { kind });
    await message(worker, 'locked');
    // posix locks belong to the process, which the worker shares with us:
    // only another process sees them as busy (docs/DESIGN.md).
    if (kind !== 'posix') expect(await tryLock(file, { kind })).toBeNull();
    expect(await probeInChild(file, { kind })).toBe('busy');
    await worker.terminate();
    const handle = await tryLock(file, { kind });
    expect(handle).not.toBeNull();
    handle?.releaseSync();
    expect(await settle(before)).toEqual(before);
  });

  it('a worker terminated while waiting leaves no thread, descriptor or lock', async () => {
    const file = path.join(dir, 'w-wait.lock');
    const held = await lock(file);
    const before = await baseline();
    // Several rounds: the teardown order (the wait's thread-safe function is
    // deleted before the addon) once let a woken thread touch freed memory.
    for (const kind of ['flock', 'ofd', 'flock', 'ofd', 'flock', 'ofd'] as const) {
      const heldKind = kind === 'flock' ? held : await lock(file, { kind, removeOnRelease: false });
      const worker = startWorker(file, { kind }, 100);
      await message(worker, 'waiting');
      await worker.terminate();
      if (heldKind !== held) heldKind.releaseSync();
    }
    expect(await settle(before)).toEqual(before);
    held.releaseSync();
    expect(await probeInChild(file)).toBe('locked');
  });

  it('a worker terminated with many waits pending (both release modes) leaves no thread, descriptor or lock', async () => {
    // Every pending wait's thread is interrupted and joined by the
    // environment's teardown (native/wait_hub.h), including the descriptor
    // each wait owns, before the worker's loop is closed.
    const file = path.join(dir, 'w-crowd.lock');
    const held = await lock(file);
    const before = await baseline();
    for (const removeOnRelease of [false, true, false, true]) {
      const worker = new Worker(fixture('crowd-worker.mjs'), {
        workerData: { path: file, options: { removeOnRelease }, count: 8, announceWaitingMs: 150 },
      });
      await message(worker, 'waiting');
      await worker.terminate();
    }
    expect(await settle(before)).toEqual(before);
    held.releaseSync();
    expect(await probeInChild(file)).toBe('locked');
  });

  it('a worker terminated right as its waits are granted leaves no thread, descriptor or lock', async () => {
    // The release and the termination race: some waits are delivered, some
    // are posted but not yet delivered, some still blocked.
    const file = path.join(dir, 'w-race.lock');
    const before = await baseline();
    for (let round = 0; round < 6; round++) {
      const held = await lock(file);
      const worker = new Worker(fixture('crowd-worker.mjs'), {
        workerData: { path: file, options: {}, count: 4, announceWaitingMs: 100 },
      });
      await message(worker, 'waiting');
      held.releaseSync();
      await sleep(round); // 0..5 ms: the grant lands before, during or after the teardown
      await worker.terminate();
    }
    expect(await settle(before)).toEqual(before);
    expect(await probeInChild(file)).toBe('locked');
  });

  it('a worker terminated while a lock file is open for reading (a probe, an owner record) has it closed', async () => {
    // readRecord() keeps its descriptor open across a read on the threadpool;
    // the worker is terminated in that window here, its descriptor still open.
    const file = path.join(dir, 'read.lock');
    await readFile(__filename);
    writeFileSync(file, '{}');
    const before = await baseline();
    const root = path.resolve(__dirname, '../..');
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const addon = require(require.resolve('node-gyp-build', { paths: [workerData.root] }))(workerData.root);
       parentPort.postMessage(addon.openReader(workerData.file));`,
      { eval: true, workerData: { root, file } },
    );
    const fd = await new Promise<number>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    expect(fd).toBeGreaterThanOrEqual(0);
    expect(readlinkSync(`/proc/self/fd/${fd}`)).toBe(file);
    await worker.terminate();
    expect((await settle(before)).fds).toBe(before.fds);
  });
});
