// The descriptor search (src/proc/descriptors.ts): the processes behind OFD
// and inherited locks, found in /proc/<pid>/fdinfo. It runs natively
// (native/fdinfo_search.h), on a waiter thread in the async API; the
// JavaScript walk it replaced stays as its fallback. Real processes hold real
// locks here: Python with OFD (and a forked child sharing them), ranges and
// posix locks, flock(1) with its command inheriting the descriptor, a process
// of another user, processes exiting mid-search, a worker terminated mid-search.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmodSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { constants } from 'node:os';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native } from '../../src/native/binding.js';
import {
  type DescriptorSearch,
  type DescriptorSearchResult,
  findDescriptorHolders,
  findDescriptorHoldersInSteps,
} from '../../src/proc/descriptors.js';
import { type FileKey, fileKey, procLocksField } from '../../src/proc/proc-locks.js';
import { runAsync, runSync } from '../../src/proc/steps.js';
import { fixture, killGroup, lineFrom, sleep, tempDir, threadCount, threadsNamed } from '../helpers.js';
import { isRoot, itAsRoot } from '../privileges.js';

const NOBODY = 65534;
const { EAGAIN } = constants.errno;
const HOST: DescriptorSearch = { maxDescriptors: 10_000_000 };

let dir: string;
let cleanup: () => void;
const children: ChildProcess[] = [];
beforeAll(() => {
  ({ dir, cleanup } = tempDir('kernel-lock-fdinfo-search-'));
  chmodSync(dir, 0o777); // the process of another user below creates its file here
});
afterAll(() => {
  for (const child of children) killGroup(child);
  cleanup();
});

/**
 * Starts a Python program in a group of its own; resolves with its "ready <pid...>" line's numbers (printed
 * in one write: lineFrom() may see a partial line).
 */
async function python(
  program: string[],
  args: string[],
  options: { uid?: number; gid?: number } = {},
): Promise<{ child: ChildProcess; pids: number[] }> {
  const child = spawn('python3', ['-c', program.join('\n'), ...args], { detached: true, ...options });
  children.push(child);
  const line = await lineFrom(child, 'ready', 60_000);
  return { child, pids: line.split(' ').slice(1).map(Number) };
}

const OFD_SETLK = "getattr(fcntl, 'F_OFD_SETLK', 37)";
const lockStruct = (type: string, start: number, length: number): string =>
  `struct.pack('hhqqi', fcntl.${type}, 0, ${start}, ${length}, 0)`;

/**
 * Holds, through descriptors of its own: an OFD lock on `whole`; on
 * `ranges`, two OFD ranges on one descriptor and a shared range on another;
 * a posix lock on `posix`. Then forks a child that shares every descriptor
 * (so two processes hold each OFD lock). "ready <pid> <child pid>".
 */
const RICH_HOLDER = [
  'import fcntl, os, struct, sys',
  'whole, ranges, posix = sys.argv[1:4]',
  'a = os.open(whole, os.O_RDWR | os.O_CREAT, 0o644)',
  `fcntl.fcntl(a, ${OFD_SETLK}, ${lockStruct('F_WRLCK', 0, 0)})`,
  'b = os.open(ranges, os.O_RDWR | os.O_CREAT, 0o644)',
  `fcntl.fcntl(b, ${OFD_SETLK}, ${lockStruct('F_WRLCK', 0, 10)})`,
  `fcntl.fcntl(b, ${OFD_SETLK}, ${lockStruct('F_WRLCK', 100, 10)})`,
  'c = os.open(ranges, os.O_RDWR)',
  `fcntl.fcntl(c, ${OFD_SETLK}, ${lockStruct('F_RDLCK', 200, 0)})`,
  'd = os.open(posix, os.O_RDWR | os.O_CREAT, 0o644)',
  `fcntl.fcntl(d, fcntl.F_SETLK, ${lockStruct('F_WRLCK', 0, 0)})`,
  'child = os.fork()',
  'if child == 0:',
  '    sys.stdin.read()',
  '    os._exit(0)',
  "print(f'ready {os.getpid()} {child}', flush=True)",
  'sys.stdin.read()',
];

/** Opens /dev/null `count` times: a process with many descriptors for a search to read. "ready <pid>". */
const MANY_DESCRIPTORS = [
  'import os, resource, sys',
  'count = int(sys.argv[1])',
  'soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)',
  'resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, count + 64)), hard))',
  '# as many as the hard limit allows, should it be lower',
  "fds = [os.open('/dev/null', os.O_RDONLY) for _ in range(min(count, max(soft, hard) - 64))]",
  "print(f'ready {os.getpid()}', flush=True)",
  'sys.stdin.read()',
];

/** An exclusive OFD lock on one file. "ready <pid>". */
const OFD_HOLDER = [
  'import fcntl, os, struct, sys',
  'fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o666)',
  `fcntl.fcntl(fd, ${OFD_SETLK}, ${lockStruct('F_WRLCK', 0, 0)})`,
  "print(f'ready {os.getpid()}', flush=True)",
  'sys.stdin.read()',
];

const keyOf = (file: string): FileKey => {
  const st = statSync(file, { bigint: true });
  return fileKey(st.dev, st.ino);
};

/** The four ways to run a search: native or the JavaScript walk, each synchronously and asynchronously. */
async function everyWay(
  keys: ReadonlySet<FileKey>,
  search: DescriptorSearch,
): Promise<Record<'nativeSync' | 'nativeAsync' | 'jsSync' | 'jsAsync', DescriptorSearchResult>> {
  return {
    nativeSync: runSync(findDescriptorHolders(keys, search)),
    nativeAsync: await runAsync(findDescriptorHolders(keys, search)),
    jsSync: runSync(findDescriptorHoldersInSteps(keys, search)),
    jsAsync: await runAsync(findDescriptorHoldersInSteps(keys, search)),
  };
}

describe('the native descriptor search', () => {
  let whole: string;
  let ranges: string;
  let posix: string;
  let flocked: string;
  let rich: { pids: number[] };
  let flockPids: number[];

  beforeAll(async () => {
    whole = path.join(dir, 'whole.lock');
    ranges = path.join(dir, 'ranges.lock');
    posix = path.join(dir, 'posix.lock');
    flocked = path.join(dir, 'flocked.lock');
    rich = await python(RICH_HOLDER, [whole, ranges, posix]);
    // flock(1) takes the lock and runs its command with the descriptor inherited: both hold it.
    writeFileSync(flocked, '');
    const flock = spawn('flock', ['-x', flocked, 'sh', '-c', 'echo ready $$; exec sleep 600'], { detached: true });
    children.push(flock);
    const line = await lineFrom(flock, 'ready');
    flockPids = [flock.pid!, Number(line.split(' ')[1])];
  });

  it('finds exactly what the JavaScript walk finds, host-wide, sync and async', async () => {
    const keys = new Set([whole, ranges, posix, flocked].map(keyOf));
    const found = await everyWay(keys, HOST);
    expect(found.nativeSync).toEqual(found.jsSync);
    expect(found.nativeAsync).toEqual(found.jsSync);
    expect(found.jsAsync).toEqual(found.jsSync);
    const { holders, complete } = found.nativeAsync;
    expect(complete).toBe(true);
    const [parent, child] = rich.pids as [number, number];
    const summary = (file: string) =>
      (holders.get(keyOf(file)) ?? []).map((h) => [h.pid, h.kind, h.mode, h.range?.start, h.range?.length]);
    // One entry per process and first byte: the forked child shares the parent's descriptors.
    expect(summary(whole)).toEqual([
      [parent, 'ofd', 'exclusive', 0, 0],
      [child, 'ofd', 'exclusive', 0, 0],
    ]);
    expect(summary(ranges)).toEqual(
      [parent, child].flatMap((pid) => [
        [pid, 'ofd', 'exclusive', 0, 10],
        [pid, 'ofd', 'exclusive', 100, 10],
        [pid, 'ofd', 'shared', 200, 0],
      ]),
    );
    // A posix lock belongs to the process that took it, not to the child it forked.
    expect(summary(posix)).toEqual([[parent, 'posix', 'exclusive', 0, 0]]);
    expect(summary(flocked).sort()).toEqual(
      flockPids.map((pid) => [pid, 'flock', 'exclusive', undefined, undefined]).sort(),
    );
  });

  it('searches only the given processes, within their bounds, as the JavaScript walk does', async () => {
    const keys = new Set([whole, ranges].map(keyOf));
    const [parent, child] = rich.pids as [number, number];
    const one = await everyWay(keys, { pids: [child], maxDescriptors: 1000 });
    for (const result of Object.values(one)) expect(result).toEqual(one.jsSync);
    expect(one.nativeAsync.complete).toBe(true);
    expect([...one.nativeAsync.holders.values()].flat().every((h) => h.pid === child)).toBe(true);
    expect(one.nativeAsync.holders.get(keyOf(ranges))).toHaveLength(3);

    // A descriptor budget smaller than the process: cut short, reported incomplete.
    const fds = readdirSync(`/proc/${parent}/fdinfo`).length;
    expect(fds).toBeGreaterThan(4);
    const bounded = native.searchDescriptorsSync([procLocksField(keyOf(whole))], [parent], 2, Infinity);
    expect(bounded).toMatchObject({ complete: false, descriptors: 2 });
    const enough = native.searchDescriptorsSync([procLocksField(keyOf(whole))], [parent], fds + 10, Infinity);
    expect(enough).toMatchObject({ complete: true, descriptors: fds, pids: [parent] });
    expect(enough.lines[0]).toMatch(/^lock:\s+\d+: OFDLCK\s+ADVISORY\s+WRITE -1 [0-9a-f]+:[0-9a-f]+:\d+ 0 EOF\n$/);
    // (The JavaScript walk used to say complete here: its budget ran out inside a process's last batch.)
    const cut = await everyWay(keys, { pids: [parent], maxDescriptors: 2 });
    for (const result of Object.values(cut)) expect(result.complete).toBe(false);

    // A deadline already past: nothing read, incomplete.
    const late = await everyWay(keys, { pids: [parent], maxDescriptors: 1000, deadline: performance.now() - 1 });
    for (const result of Object.values(late)) expect(result).toEqual({ holders: new Map(), complete: false });
    // A process that does not exist is skipped, as an exited one would be: the search is still complete.
    const gone = await everyWay(keys, { pids: [2 ** 22 + 7, child], maxDescriptors: 1000 });
    for (const result of Object.values(gone)) expect(result).toEqual(one.jsSync);
  });

  itAsRoot('a process of another user (nobody) to run, and seteuid() to search as that user')(
    "skips other users' processes it may not read (EACCES), as before",
    async () => {
      // A process of nobody's holds one file; this process, root, holds another.
      const theirs = path.join(dir, 'theirs.lock');
      const ours = path.join(dir, 'ours.lock');
      const them = await python(OFD_HOLDER, [theirs], { uid: NOBODY, gid: NOBODY });
      const us = await python(OFD_HOLDER, [ours]);
      const keys = new Set([keyOf(theirs), keyOf(ours)]);
      const asRoot = await everyWay(keys, HOST);
      expect(asRoot.nativeAsync.holders.get(keyOf(ours))?.map((h) => h.pid)).toEqual(us.pids);
      // As nobody, root's processes cannot be read: skipped, not an error, and the search still complete.
      process.setegid!(NOBODY);
      process.seteuid!(NOBODY);
      let asNobody: Awaited<ReturnType<typeof everyWay>>;
      try {
        expect(() => readdirSync(`/proc/${us.pids[0]}/fdinfo`)).toThrow(/EACCES/);
        asNobody = await everyWay(keys, HOST);
      } finally {
        process.seteuid!(0);
        process.setegid!(0);
      }
      for (const result of Object.values(asNobody)) expect(result).toEqual(asNobody.jsSync);
      expect(asNobody.nativeAsync.complete).toBe(true);
      expect([...asNobody.nativeAsync.holders.keys()]).toEqual([keyOf(theirs)]);
      expect(asNobody.nativeAsync.holders.get(keyOf(theirs))?.map((h) => h.pid)).toEqual(them.pids);
    },
  );

  it('falls back to the JavaScript walk when no thread can be started', async () => {
    // RLIMIT_NPROC binds only a process whose real user is not root: as
    // root the fixture runs as nobody. Once it is ready it may start no thread.
    const user = isRoot ? { uid: NOBODY, gid: NOBODY } : {};
    const target = path.join(dir, 'no-thread.lock');
    writeFileSync(target, 'not a record\n');
    chmodSync(target, 0o666);
    const holder = await python(OFD_HOLDER, [target], user);
    const child = spawn(process.execPath, [fixture('inspect-no-thread.mjs'), target], user);
    children.push(child);
    await lineFrom(child, 'ready');
    // Lowered by the same user (changing another user's limits takes CAP_SYS_RESOURCE, which a container may lack).
    execFileSync('prlimit', ['--pid', String(child.pid), '--nproc=1:1'], user);
    const report = lineFrom(child, '{');
    child.stdin?.write('go\n');
    expect(JSON.parse(await report)).toEqual({
      nativeThread: `pthread_create ${-EAGAIN}`,
      pids: holder.pids,
      failure: null,
    });
  });

  it('a process that exits mid-search does not break it', async () => {
    const target = path.join(dir, 'survivor.lock');
    const holder = await python(OFD_HOLDER, [target]);
    const fields = [procLocksField(keyOf(target))];
    const BUSY = 3000;
    let midway = 0;
    for (let round = 0; round < 6; round++) {
      const busy = await python(MANY_DESCRIPTORS, [String(BUSY)]);
      // The exiting process first: the search is inside its descriptors when it dies.
      const searched = new Promise<ReturnType<typeof native.searchDescriptorsSync>>((resolve) => {
        native.searchDescriptors(fields, [busy.pids[0]!, holder.pids[0]!], 1_000_000, Infinity, resolve);
      });
      await sleep(round);
      killGroup(busy.child);
      const result = await searched;
      // Exited is not cut short: the rest was searched, and the holder found.
      expect(result).toMatchObject({ complete: true, pids: holder.pids });
      if (result.descriptors > 10 && result.descriptors < BUSY) midway++;
    }
    console.log(`the process exited mid-search in ${midway} rounds of 6`);
    expect(midway).toBeGreaterThan(0);
  });

  it('runs on waiter threads, named kl-fdinfo only until the searches are delivered', async () => {
    const busy = await python(MANY_DESCRIPTORS, ['3000']);
    const searches = Array.from({ length: 3 }, () =>
      runAsync(
        findDescriptorHolders(new Set([keyOf(whole)]), { pids: [busy.pids[0]!, ...rich.pids], maxDescriptors: 1e6 }),
      ),
    );
    // Three searches at once: on waiter threads, none of them libuv's pool.
    let seen = 0;
    for (let i = 0; i < 200 && seen === 0; i++) {
      seen = threadsNamed('kl-fdinfo');
      if (seen === 0) await new Promise((resolve) => setImmediate(resolve));
    }
    expect(seen).toBeGreaterThan(0);
    for (const result of await Promise.all(searches)) expect(result.holders.get(keyOf(whole))).toHaveLength(2);
    // Each thread takes its own name back before it posts the result, then parks for the next wait or search.
    for (let i = 0; i < 100 && threadsNamed('kl-fdinfo') > 0; i++) await sleep(10);
    expect(threadsNamed('kl-fdinfo')).toBe(0);
    expect(native.stats()[1]).toBe(0);
    killGroup(busy.child);
  });

  it('a worker terminated mid-search stops the search at once, without waiting for its thread', async () => {
    const target = path.join(dir, 'worker-target.lock');
    writeFileSync(target, 'not a record\n');
    const holder = await python(OFD_HOLDER, [target]);
    const busy = await python(MANY_DESCRIPTORS, ['15000']);
    // How long one walk of the host takes here: a search that ran to its end would hold terminate() about that long.
    const walkStarted = performance.now();
    native.searchDescriptorsSync([procLocksField(keyOf(target))], null, 1e9, Infinity);
    const walkMs = performance.now() - walkStarted;
    await sleep(50);
    const threads = threadCount();
    for (let round = 0; round < 3; round++) {
      // The worker inspects the file in a loop: an OFD holder without a record is searched for host-wide.
      const worker = new Worker(fixture('inspect-loop-worker.mjs'), { workerData: { path: target } });
      const first = await new Promise<{ pid: number | undefined }>((resolve, reject) => {
        worker.once('message', resolve);
        worker.once('error', reject);
      });
      expect(first.pid).toBe(holder.pids[0]);
      let seen = false;
      for (let i = 0; i < 2000 && !seen; i++) {
        seen = threadsNamed('kl-fdinfo') > 0;
        if (!seen) await sleep(1);
      }
      expect(seen).toBe(true);
      const started = performance.now();
      await worker.terminate();
      const ms = performance.now() - started;
      // Teardown abandons the search (its waiter thread is shared): the walk stops before its next read, and the
      // thread takes its own name back and parks.
      while (threadsNamed('kl-fdinfo') > 0 && performance.now() - started < walkMs) await sleep(1);
      const stoppedMs = performance.now() - started;
      console.log(
        `worker terminated mid-search in ${ms.toFixed(1)} ms, its walk stopped in ${stoppedMs.toFixed(1)} ms ` +
          `(a walk of the host: ${walkMs.toFixed(0)} ms)`,
      );
      // Both well before the walk would have ended.
      expect(ms).toBeLessThan(walkMs / 2);
      expect(stoppedMs).toBeLessThan(walkMs / 2);
    }
    for (let i = 0; i < 50 && threadCount() !== threads; i++) await sleep(20);
    expect(threadCount()).toBe(threads);
    killGroup(busy.child);
    // This thread's searches still work.
    const after = await runAsync(findDescriptorHolders(new Set([keyOf(target)]), HOST));
    expect(after.holders.get(keyOf(target))?.map((h) => h.pid)).toEqual(holder.pids);
  });
});
