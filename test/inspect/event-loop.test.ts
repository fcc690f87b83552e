// The async inspection API never blocks the event loop for long, however
// busy the host. Another process holds 10,000 flock locks, then 10,000 OFD
// locks (so /proc/locks is ~550 KB and one process has 10,000 descriptors to
// search); inspect(), scan(), sweep() and the holder description of lock()'s
// timeout must still return to the loop within milliseconds. Before, they
// read and parsed /proc/locks synchronously (12–40 ms of loop time) and
// searched every descriptor on the host synchronously (180–250 ms).
//
// The loop's longest block is measured in this very process by
// test/fixtures/loop-monitor.mjs (wall-clock gaps of a 1 ms timer minus the
// time the thread waited for a CPU). A shared machine still adds the odd
// stall (a virtual CPU descheduled by its host), so each operation runs
// CALLS times and the median of its per-call maxima must stay within
// BOUND_MS: generous, yet a fraction of what a synchronous read costs. The
// precise figure (≤ 1 ms) is measured by bench/inspection.mjs.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { inspect, LockTimeoutError, lock, lockSync, scan, sweep } from '../../src/index.js';
import { loopMonitor, measureBlock } from '../fixtures/loop-monitor.mjs';
import { fixture, type Holder, holdInChild, holdWithoutRecord, killGroup, lineFrom, tempDir } from '../helpers.js';

const BUSY_LOCKS = 10_000;
const CALLS = 7;
const BOUND_MS = 5;
/** Loop-thread CPU per descriptor on the host for a host-wide search: reading fdinfo on the loop costs over 10 µs. */
const LOOP_CPU_PER_DESCRIPTOR_US = 4;

let monitor: ReturnType<typeof loopMonitor>;
beforeAll(() => {
  monitor = loopMonitor();
});
afterAll(() => monitor.stop());

const median = (values: number[]): number => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** Runs `fn` once to warm up, then CALLS times; returns the per-call blocks and the last value. */
async function blocks<T>(
  label: string,
  fn: () => Promise<T>,
  prepare: () => void = () => {},
): Promise<{ median: number; values: T[] }> {
  prepare();
  await fn();
  const runs: Awaited<ReturnType<typeof measureBlock<T>>>[] = [];
  for (let i = 0; i < CALLS; i++) runs.push(await measureBlock(monitor, fn, prepare));
  const maxima = runs.map((r) => r.maxBlockMs);
  console.log(
    `${label}: longest loop block per call ${maxima.map((m) => m.toFixed(2)).join(' ')} ms ` +
      `(raw gaps ${runs.map((r) => r.maxGapMs.toFixed(1)).join(' ')} ms), ` +
      `wall ${runs.map((r) => r.wallMs.toFixed(0)).join(' ')} ms`,
  );
  return { median: median(maxima), values: runs.map((r) => r.value) };
}

/** A process started in its own group, killed with killGroup(). */
function spawnGroup(command: string, args: string[]): ChildProcess {
  return spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'], detached: true });
}

/** A lock held by a locker that writes no owner record, on a file with text in it. */
function recordlessHolder(kind: 'flock' | 'ofd', file: string): Promise<ChildProcess> {
  writeFileSync(file, 'not a record\n');
  return holdWithoutRecord(kind, file);
}

for (const kind of ['flock', 'ofd'] as const) {
  describe(`with ${BUSY_LOCKS} ${kind} locks held by another process`, () => {
    let dir: string;
    let cleanup: () => void;
    let busy: ChildProcess;
    let holder: Holder;
    let peer: ChildProcess;
    let sessions: string;
    let target: string;
    let peerTarget: string;

    beforeAll(async () => {
      ({ dir, cleanup } = tempDir(`kernel-lock-loop-${kind}-`));
      busy = spawnGroup(process.execPath, [
        fixture('many-locks.mjs'),
        path.join(dir, 'busy'),
        String(BUSY_LOCKS),
        kind,
      ]);
      await lineFrom(busy, 'locked', 170_000);
      sessions = path.join(dir, 'sessions');
      mkdirSync(sessions);
      target = path.join(sessions, 'target.jsonl.lock');
      peerTarget = path.join(sessions, 'peer.jsonl.lock');
      holder = await holdInChild(target, { kind, owner: 'loop-test', removeOnRelease: false });
      peer = await recordlessHolder(kind, peerTarget);
      // An orphan for sweep() to remove each time (rewritten before every call).
      writeFileSync(path.join(sessions, 'orphan.lock'), JSON.stringify({ pid: 4_194_304 + 9 }));
    }, 180_000);

    afterAll(async () => {
      killGroup(peer);
      await holder?.kill('SIGKILL');
      killGroup(busy);
      cleanup?.();
    });

    it('inspect() names the holder without blocking the loop', async () => {
      const { median: block, values } = await blocks(`${kind} inspect()`, () => inspect(target));
      const inspection = values.at(-1)!;
      expect(inspection).toMatchObject({ state: 'held', held: true, recordMatchesHolder: true });
      const named = kind === 'flock' ? inspection.holders[0]?.pid : inspection.holders[0]?.descriptors?.[0]?.pid;
      expect(named).toBe(holder.pid);
      expect(block).toBeLessThanOrEqual(BOUND_MS);
    });

    it('scan() and sweep() of a directory do not block the loop', async () => {
      const scanned = await blocks(`${kind} scan()`, () => scan(sessions));
      // orphan.lock (a dead pid's record), peer.jsonl.lock, target.jsonl.lock
      expect(scanned.values.at(-1)!.map((i) => i.state)).toEqual(['orphan-record', 'held', 'held']);
      expect(scanned.median).toBeLessThanOrEqual(BOUND_MS);
      // The orphan it removes is written back before each call, outside the measured window.
      const swept = await blocks(
        `${kind} sweep()`,
        () => sweep(sessions),
        () => writeFileSync(path.join(sessions, 'orphan.lock'), JSON.stringify({ pid: 4_194_304 + 9 })),
      );
      expect(swept.values.at(-1)).toMatchObject({ removed: [path.join(sessions, 'orphan.lock')] });
      expect(swept.values.at(-1)!.kept.map((k) => k.reason)).toEqual(['held', 'held']);
      expect(swept.median).toBeLessThanOrEqual(BOUND_MS);
    });

    it("lock()'s timeout names a kernel-lock holder without blocking the loop", async () => {
      const { median: block, values } = await blocks(`${kind} lock() timeout, kernel-lock holder`, () =>
        lock(target, { kind, timeout: 20 }).catch((e: unknown) => e),
      );
      const error = values.at(-1) as LockTimeoutError;
      expect(error).toBeInstanceOf(LockTimeoutError);
      expect(error.message).toContain(`held by pid ${holder.pid} (alive`);
      expect(error.message).toContain('owner "loop-test"');
      expect(error.holder).toMatchObject({ state: 'held', recordMatchesHolder: true });
      expect(block).toBeLessThanOrEqual(BOUND_MS);
    });

    it("lock()'s timeout on a holder without a record (/proc/locks, descriptors) does not block the loop", async () => {
      const { median: block, values } = await blocks(
        `${kind} lock() timeout, ${kind === 'flock' ? 'flock(1)' : 'Python OFD'} holder`,
        () => lock(peerTarget, { kind, timeout: 20 }).catch((e: unknown) => e),
      );
      const error = values.at(-1) as LockTimeoutError;
      expect(error).toBeInstanceOf(LockTimeoutError);
      if (kind === 'flock') expect(error.message).toContain(`held by pid ${peer.pid} (alive, "flock`);
      // The OFD holder's descriptor search is bounded (4,096 descriptors): on
      // this host it may be cut short before it reaches the Python process.
      else expect(error.message).toMatch(/held by (pid \d+ \(alive|an unknown process \(OFD locks carry no pid)/);
      expect(block).toBeLessThanOrEqual(BOUND_MS);
    });

    // An OFD lock names no pid, so the holder of one without a record is
    // searched for among every descriptor on the host: here the other
    // process's 10,000. That search runs natively on a thread of its own
    // (src/proc/descriptors.ts); read from JavaScript on the loop, 10,000
    // fdinfo files cost the loop thread 145–200 ms of CPU per call, in 0.5 ms
    // slices that with slow reads and collections blocked it 1.2–3 ms. The
    // loop thread's own CPU time (/proc/thread-self/schedstat, unaffected by
    // waiting for a CPU) tells the two apart on any load: it must stay below
    // LOOP_CPU_PER_DESCRIPTOR_US per descriptor on the host, monitor ticks included.
    // Defined for OFD locks only (flock locks name their pids: no host-wide search), not skipped for flock.
    if (kind === 'ofd') {
      it("inspect() of an OFD holder without a record searches the host's descriptors off the loop", async () => {
        const cpu = (): number => Number(readFileSync('/proc/thread-self/schedstat', 'utf8').split(' ')[0]) / 1e6;
        const used: number[] = [];
        const { median: block } = await blocks(
          'ofd inspect(), Python OFD holder (host-wide descriptor search)',
          async () => {
            const started = cpu();
            const inspection = await inspect(peerTarget);
            used.push(cpu() - started);
            return inspection;
          },
        );
        used.shift(); // the warm-up call
        const perDescriptorUs = (median(used) * 1000) / BUSY_LOCKS;
        console.log(
          `ofd inspect(), Python OFD holder: loop thread CPU per call ${used.map((u) => u.toFixed(1)).join(' ')} ms ` +
            `(${perDescriptorUs.toFixed(2)} µs per descriptor on the host)`,
        );
        expect(perDescriptorUs).toBeLessThan(LOOP_CPU_PER_DESCRIPTOR_US);
        expect(block).toBeLessThanOrEqual(BOUND_MS);
      });
    }

    it("lockSync()'s timeout stays bounded", () => {
      const started = performance.now();
      let error: unknown;
      try {
        lockSync(peerTarget, { kind, timeout: 20 });
      } catch (e) {
        error = e;
      }
      const elapsed = performance.now() - started;
      console.log(`${kind} lockSync() timeout on a record-less holder: ${elapsed.toFixed(0)} ms`);
      expect(error).toBeInstanceOf(LockTimeoutError);
      // /proc/locks once, and at most 1,024 descriptors or 50 ms of search.
      expect(elapsed).toBeLessThan(20 + 3_000);
    });
  });
}
