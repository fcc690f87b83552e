// The threads waits run on (native/waiter_threads.h): a finished wait's
// thread parks and the next wait reuses it instead of creating one; a
// descriptor search (native/fdinfo_search.h) runs on the same threads; a
// parked thread exits after lingering without a wait; the number of threads follows
// the number of concurrent waits (512 waits: 512 threads, each asleep in the
// kernel, served in the kernel's order) and at most 16 stay parked; a
// worker's teardown leaves its parked threads usable by the rest of the
// process.
import { readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { lock } from '../../src/index.js';
import { native } from '../../src/native/binding.js';
import { fixture, holdInChild, releaseInChild, sleep, tempDir, threadsNamed, untilBlocked } from '../helpers.js';

let dir: string;
let cleanup: () => void;
beforeEach(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-waiter-threads-'));
});
afterEach(() => cleanup());

/** Every thread of this process, idle waiter threads included. */
const tasks = (): number => readdirSync('/proc/self/task').length;
const LINGER_MS = 2000; // WaiterThreads::kLingerMs
const MAX_PARKED = 16; // WaiterThreads::kMaxParked

/** Waits (bounded) until no waiter thread is alive. */
async function untilNoWaiterThreads(): Promise<void> {
  const deadline = performance.now() + LINGER_MS + 8000;
  while (native.waiterThreads()[0] > 0 && performance.now() < deadline) await sleep(20);
}

/**
 * [alive, idle] waiter threads once every ended wait is joined (a granted wait is joined right after its result is
 * delivered) and the threads beyond the parked bound have exited.
 */
async function settledThreads(): Promise<[number, number]> {
  for (let i = 0; i < 200; i++) {
    const [alive, idle] = native.waiterThreads();
    if (alive === idle && alive <= MAX_PARKED) break;
    await sleep(10);
  }
  return native.waiterThreads();
}

/** A host-wide descriptor search for nothing; started in the call (on a waiter thread), resolved when delivered. */
const search = (): Promise<unknown> =>
  new Promise((delivered) => native.searchDescriptors([], null, 1e9, Infinity, delivered));

/** One contended lock() on a lock a child process holds, granted when the child releases. */
async function contendedWait(file: string): Promise<void> {
  const holder = await holdInChild(file);
  const waiting = lock(file);
  await untilBlocked(1);
  await releaseInChild(holder);
  (await waiting).releaseSync();
  await holder.kill();
}

/**
 * A contended wait on `file` with one thread parked: it must run on that
 * thread (none created: `tasks` stays), which parks again after the grant.
 */
async function waitOnParkedThread(file: string, tasksNow: number): Promise<void> {
  const holder = await holdInChild(file);
  const waiting = lock(file);
  await untilBlocked(1);
  expect(native.waiterThreads()).toEqual([1, 0]);
  expect(tasks()).toBe(tasksNow);
  await releaseInChild(holder);
  (await waiting).releaseSync();
  await holder.kill();
  expect(await settledThreads()).toEqual([1, 1]);
}

describe('waiter threads', () => {
  it('a finished wait parks its thread, the next wait reuses it, and a parked thread exits after lingering', async () => {
    await readFile(__filename); // libuv's pool threads start lazily: not ours
    await untilNoWaiterThreads();
    const before = tasks();
    await contendedWait(path.join(dir, 'a.lock'));
    // Parked, not exited: one thread more than before, asleep without a wait.
    expect(await settledThreads()).toEqual([1, 1]);
    expect(tasks()).toBe(before + 1);
    // The second wait runs on the parked thread: no thread was created.
    await waitOnParkedThread(path.join(dir, 'b.lock'), before + 1);
    const parkedAt = performance.now();
    // Without another wait it exits: the process keeps no thread for waits it no longer makes.
    await untilNoWaiterThreads();
    expect(performance.now() - parkedAt).toBeGreaterThan(LINGER_MS - 200);
    expect(native.waiterThreads()).toEqual([0, 0]);
    for (let i = 0; i < 50 && tasks() > before; i++) await sleep(20); // the kernel reaps the exited thread
    expect(tasks()).toBe(before);
  });

  it('a descriptor search runs on a parked waiter thread, which parks again for the next wait', async () => {
    await readFile(__filename); // libuv's pool threads start lazily: not ours
    await untilNoWaiterThreads();
    const before = tasks();
    await contendedWait(path.join(dir, 'a.lock'));
    expect(await settledThreads()).toEqual([1, 1]);
    expect(tasks()).toBe(before + 1);
    // The search takes the parked thread (at once, in the call): no thread is created for it.
    const first = search();
    expect(native.waiterThreads()).toEqual([1, 0]);
    expect(tasks()).toBe(before + 1);
    await first;
    // Delivered: joined (its thread goes back to park), under its own name ("kl-fdinfo" only while it searches).
    expect(native.waiterThreads()).toEqual([1, 1]);
    expect(threadsNamed('kl-fdinfo')).toBe(0);
    expect(tasks()).toBe(before + 1);
    // The search's thread parked again: the next wait runs on it.
    await waitOnParkedThread(path.join(dir, 'b.lock'), before + 1);
  });

  it('512 concurrent waits: a thread each, all asleep in the kernel, served in queue order; at most 16 stay parked', async () => {
    const file = path.join(dir, 'crowd.lock');
    const first = await lock(file);
    const order: number[] = [];
    const all: Promise<void>[] = [];
    for (let i = 0; i < 512; i++) {
      all.push(
        lock(file).then((handle) => {
          order.push(i);
          handle.releaseSync();
        }),
      );
      // The next one starts once this one sleeps in the kernel: the kernel's
      // queue order is then the start order.
      await untilBlocked(i + 1);
    }
    expect(native.waiterThreads()[0]).toBe(512);
    first.releaseSync();
    await Promise.all(all);
    expect(order).toEqual(Array.from({ length: 512 }, (_, i) => i));
    // The threads beyond the parked bound exited as their waits ended.
    const [alive, idle] = await settledThreads();
    expect(alive).toBeLessThanOrEqual(MAX_PARKED);
    expect(idle).toBe(alive);
  });

  it("a worker's teardown leaves its parked thread to the rest of the process, which waits on it", async () => {
    const file = path.join(dir, 'worker.lock');
    await untilNoWaiterThreads();
    const held = await lock(file);
    const worker = new Worker(fixture('lock-worker.mjs'));
    const ask = (op: string): Promise<unknown> =>
      new Promise((resolve, reject) => {
        worker.once('message', (m: { result?: unknown; error?: { message: string } }) =>
          m.error ? reject(new Error(m.error.message)) : resolve(m.result),
        );
        worker.postMessage({ id: 1, op, path: file, options: {} });
      });
    const workerLocked = ask('lock');
    await untilBlocked(1); // the worker's wait sleeps in the kernel
    held.releaseSync();
    await workerLocked;
    await ask('release');
    await worker.terminate();
    expect(await settledThreads()).toEqual([1, 1]);
    // The environment that used the thread is gone; a wait here runs on it.
    const again = await lock(file);
    const waiting = lock(file);
    await untilBlocked(1);
    expect(native.waiterThreads()).toEqual([1, 0]);
    again.releaseSync();
    (await waiting).releaseSync();
    expect(await settledThreads()).toEqual([1, 1]);
  });
});
