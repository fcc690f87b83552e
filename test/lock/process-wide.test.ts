// Per-process bookkeeping is process-wide (issue 10, point 6). Classic posix
// locks belong to the process, which every worker_thread shares: the
// table that makes acquisitions of one inode take turns lives in native
// memory, so posix locks exclude between workers as between processes.
// And no close kernel-lock makes drops a posix lock the process still holds.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { inspect, LockTimeoutError, lock, lockSync, tryLock } from '../../src/index.js';
import { readRecord } from '../../src/lock/owner-record.js';
import { fixture, probeInChild, sleep, tempDir } from '../helpers.js';

let dir: string;
let cleanup: () => void;
const workers: Worker[] = [];
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-process-wide-'));
});
afterEach(async () => {
  for (const w of workers.splice(0)) await w.terminate();
  cleanup();
});

interface Reply {
  id: number;
  result?: unknown;
  error?: { name: string; code?: string; message: string };
}

let nextId = 1;
function lockWorker(): { worker: Worker; call: (message: object) => Promise<Reply> } {
  const worker = new Worker(fixture('lock-worker.mjs'));
  workers.push(worker);
  const call = (message: object): Promise<Reply> => {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      const onMessage = (reply: Reply): void => {
        if (reply.id !== id) return;
        worker.off('message', onMessage);
        resolve(reply);
      };
      worker.on('message', onMessage);
      worker.once('error', reject);
      worker.postMessage({ id, ...message });
    });
  };
  return { worker, call };
}

const posix = { kind: 'posix' } as const;

describe('posix between worker_threads', () => {
  it('a worker is not granted while the main thread holds, and is granted once it releases', async () => {
    const file = path.join(dir, 'shared.lock');
    const held = await lock(file, posix);
    const { call } = lockWorker();
    expect((await call({ op: 'tryLock', path: file, options: posix })).result).toBe('busy');
    const timedOut = await call({ op: 'lock', path: file, options: { ...posix, timeout: 300 } });
    expect(timedOut.error?.name).toBe('LockTimeoutError');
    const syncTimedOut = await call({ op: 'lockSync', path: file, options: { ...posix, timeout: 300 } });
    expect(syncTimedOut.error?.name).toBe('LockTimeoutError');
    const waiting = call({ op: 'lock', path: file, options: posix });
    await sleep(200);
    held.releaseSync();
    expect((await waiting).result).toBe('locked');
    // Now the worker holds it: the main thread waits its turn, and another
    // process sees the lock.
    expect(await tryLock(file, posix)).toBeNull();
    await expect(lock(file, { ...posix, timeout: 200 })).rejects.toBeInstanceOf(LockTimeoutError);
    expect(await probeInChild(file, posix)).toBe('busy');
    await call({ op: 'release' });
    expect(await probeInChild(file, posix)).toBe('locked');
  });

  it('three threads incrementing one counter under a posix lock never overlap', async () => {
    const file = path.join(dir, 'counter.lock');
    const counter = path.join(dir, 'counter');
    writeFileSync(counter, '0');
    const iterations = 200;
    const calls = [lockWorker(), lockWorker(), lockWorker()].map(({ call }) =>
      call({ op: 'count', path: file, options: posix, iterations, counter }),
    );
    const replies = await Promise.all(calls);
    expect(replies.map((r) => r.error ?? r.result)).toEqual([0, 0, 0]);
    expect(Number(readFileSync(counter, 'utf8'))).toBe(3 * iterations);
  });

  it('a worker terminated while holding, or while queued for the turn, strands nobody', async () => {
    const file = path.join(dir, 'terminated.lock');
    const holder = lockWorker();
    expect((await holder.call({ op: 'lock', path: file, options: posix })).result).toBe('locked');
    const queued = lockWorker();
    void queued.call({ op: 'lock', path: file, options: posix });
    await sleep(100);
    const mine = lock(file, { ...posix, timeout: 10_000 });
    await sleep(100);
    await queued.worker.terminate();
    await holder.worker.terminate();
    const handle = await mine;
    expect(handle.verify()).toBe(true);
    expect(await probeInChild(file, posix)).toBe('busy');
    handle.releaseSync();
    expect(await probeInChild(file, posix)).toBe('locked');
  });

  it('lockSync in a worker waits for the main thread’s turn; on its own thread it is EDEADLK', async () => {
    const file = path.join(dir, 'sync.lock');
    const held = lockSync(file, posix);
    const { call } = lockWorker();
    let answered = false;
    const waiting = call({ op: 'lockSync', path: file, options: { ...posix, timeout: 10_000 } }).then((reply) => {
      answered = true;
      return reply;
    });
    await sleep(200);
    expect(answered).toBe(false); // still waiting for the main thread's turn
    expect(() => lockSync(file, posix)).toThrow(/EDEADLK/);
    held.releaseSync();
    expect((await waiting).result).toBe('locked');
    await call({ op: 'release' });
  });
});

describe('no close drops a posix lock the process holds', () => {
  it.each([
    ['flock', {}],
    // OFD and posix locks conflict with each other: another range.
    ['ofd', { range: { start: 100, length: 10 } }],
  ] as const)('releasing a %s handle on the same file keeps the posix lock', async (kind, extra) => {
    const file = path.join(dir, `mixed-${kind}.lock`);
    const mine = { ...posix, range: { start: 0, length: 10 } };
    const held = await lock(file, mine);
    const other = await lock(file, { kind, ...extra, timeout: 5_000 });
    await other.release();
    // The posix lock is still there for other processes...
    expect(await probeInChild(file, mine)).toBe('busy');
    expect(held.verify()).toBe(true);
    // ...and the released lock really is released.
    expect(await probeInChild(file, { kind, ...extra })).toBe('locked');
    held.releaseSync();
    expect(await probeInChild(file, mine)).toBe('locked');
  });

  it('a worker releasing a flock handle keeps the main thread’s posix lock', async () => {
    const file = path.join(dir, 'worker-flock.lock');
    const held = await lock(file, posix);
    const { call } = lockWorker();
    expect((await call({ op: 'lock', path: file, options: {} })).result).toBe('locked');
    await call({ op: 'release' });
    expect(await probeInChild(file, posix)).toBe('busy');
    expect(await probeInChild(file, {})).toBe('locked');
    held.releaseSync();
  });

  it('reading the record and inspecting keep it too', async () => {
    const file = path.join(dir, 'read.lock');
    const held = await lock(file, { ...posix, owner: 'reader test' });
    expect((await readRecord(file))?.owner).toBe('reader test');
    expect((await inspect(file)).held).toBe(true);
    expect(await probeInChild(file, posix)).toBe('busy');
    held.releaseSync();
  });
});
