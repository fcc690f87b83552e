// The measurements of issue 6 (the hand-off, 2, is in handoff.mjs). Each
// takes the run's parameters, the contenders and a scratch directory, and
// returns, per contender id, either a result object or { na: 'reason' }: a
// contender that cannot do something gets a reason in the table, never a
// silent gap.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { floorBinary, floorServeChild, serveChild } from './children.mjs';
import { Wait } from './contenders.mjs';
import { summarize } from './stats.mjs';

const now = () => process.hrtime.bigint();
const usBetween = (from, to) => Number(to - from) / 1e3;

/** Why a contender cannot take part in an in-process waiting measurement. */
function inProcessWaitNa(spec) {
  if (spec.floor) return 'C floor: measured only where no Node runtime is involved';
  if (spec.sync) return 'a synchronous wait blocks the JS thread: nothing else runs while it waits';
  return null;
}

/** Sends "acquire" and resolves when the child has entered its acquire call. */
async function startAcquire(child) {
  child.send('acquire');
  await child.next('waiting');
}

async function acquireNow(child, timeoutMs = 30_000) {
  await startAcquire(child);
  return BigInt(await child.next('acquired', timeoutMs));
}

// 1. Uncontended acquire + release, µs per cycle, rounds interleaved.
function nodeCycleSync(acquire, lockPath, ms) {
  const samples = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t0 = now();
    const release = acquire(lockPath);
    release();
    samples.push(usBetween(t0, now()));
  }
  return samples;
}

async function nodeCycleAsync(acquire, lockPath, ms) {
  const samples = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t0 = now();
    const release = await acquire(lockPath);
    await release();
    samples.push(usBetween(t0, now()));
  }
  return samples;
}

/** A contender's own cycle (its natural usage, no wrapper in between), timed the same way. */
async function nodeOwnCycle(cycle, lockPath, ms) {
  const samples = [];
  const end = performance.now() + ms;
  while (performance.now() < end) {
    const t0 = now();
    await cycle(lockPath);
    samples.push(usBetween(t0, now()));
  }
  return samples;
}

/** The floor a contender's uncontended cycle is compared with: the same work in C. */
export function floorFor(spec) {
  return spec.keepsFile ? 'c-floor-keep' : 'c-floor-remove';
}

function floorCycle(spec, lockPath, ms) {
  const run = spawnSync(floorBinary, ['cycle', lockPath, String(spec.unlink), String(ms)], { encoding: 'utf8' });
  if (run.status !== 0) throw new Error(`floor cycle failed: ${run.stderr}`);
  return run.stdout
    .trim()
    .split(' ')
    .map((ns) => Number(ns) / 1e3);
}

export async function uncontended(cfg, specs, dir) {
  const runners = [];
  for (const spec of specs) {
    const lockPath = path.join(dir, `m1-${spec.id}.lock`);
    if (spec.floor) {
      runners.push({ spec, run: async (ms) => floorCycle(spec, lockPath, ms) });
    } else if (spec.loadCycle) {
      // The library's own usage, e.g. `await (await lock(p)).release()`.
      const cycle = await spec.loadCycle();
      runners.push({ spec, run: (ms) => nodeOwnCycle(cycle, lockPath, ms) });
    } else {
      const acquire = await spec.load();
      const run = spec.sync
        ? async (ms) => nodeCycleSync(acquire, lockPath, ms)
        : (ms) => nodeCycleAsync(acquire, lockPath, ms);
      runners.push({ spec, run });
    }
  }
  const samples = new Map(specs.map((spec) => [spec.id, []]));
  const perRound = new Map(specs.map((spec) => [spec.id, []]));
  for (const runner of runners) await runner.run(cfg.warmupMs); // JIT, page cache, dentries
  for (let round = 0; round < cfg.rounds; round++) {
    // A B C ... then ... C B A: drift and position effects cancel.
    const order = round % 2 === 0 ? runners : [...runners].reverse();
    for (const runner of order) {
      const got = await runner.run(cfg.roundMs);
      const into = samples.get(runner.spec.id);
      for (const value of got) into.push(value);
      perRound.get(runner.spec.id).push(summarize(got).p50);
    }
  }
  const results = {};
  for (const spec of specs) {
    const entry = { unit: 'us', ...summarize(samples.get(spec.id)), roundP50: perRound.get(spec.id) };
    const floorRounds = perRound.get(floorFor(spec));
    if (!spec.floor && floorRounds) entry.roundRatios = perRound.get(spec.id).map((v, r) => v / floorRounds[r]);
    results[spec.id] = entry;
  }
  return { results, samples };
}

// 3. Crash recovery: the holder is SIGKILLed; time until the waiter holds.
// Killed processes do not go back to the pool (which restarts workers, in
// parallel, before each round: see crashRecovery()).
async function crashBlock(pool, spec, lockPath, kills, settleMs) {
  const chain = await pool.enlist(spec, lockPath, kills + 1);
  const [first, ...rest] = chain;
  const latencies = [];
  let holder = first;
  try {
    await acquireNow(first);
    for (const waiter of rest) {
      await startAcquire(waiter);
      await sleep(settleMs);
      const killedAt = now();
      holder.kill('SIGKILL');
      const acquired = BigInt(await waiter.next('acquired', 60_000));
      latencies.push(usBetween(killedAt, acquired) / 1e3);
      holder = waiter;
    }
  } finally {
    await pool.dismiss(chain, { idle: false });
  }
  return latencies;
}

// 3b. The same with a C process as the killed holder and the contender as
// the waiter: a killed Node process takes milliseconds to die (the kernel
// tears down its address space and threads before it closes its files), so
// this isolates what the waiting library itself adds.
async function crashBlockCHolder(pool, spec, lockPath, kills, settleMs) {
  const [waiter] = spec.floor ? [floorServeChild(spec.lockKind, lockPath)] : await pool.enlist(spec, lockPath, 1);
  const holders = [];
  const latencies = [];
  let clean = false;
  try {
    if (spec.floor) await waiter.next('ready');
    for (let i = 0; i < kills; i++) {
      const holder = floorServeChild(spec.lockKind, lockPath);
      holders.push(holder);
      await holder.next('ready');
      await acquireNow(holder);
      await startAcquire(waiter);
      await sleep(settleMs);
      const killedAt = now();
      holder.kill('SIGKILL');
      const acquired = BigInt(await waiter.next('acquired', 60_000));
      latencies.push(usBetween(killedAt, acquired) / 1e3);
      waiter.send('release');
      await waiter.next('released');
    }
    clean = true;
  } finally {
    await pool.dismiss([waiter, ...holders], { idle: clean });
  }
  return latencies;
}

export async function crashRecovery(cfg, specs, dir, pool) {
  const samples = new Map(specs.map((spec) => [spec.id, []]));
  const cHolder = new Map(specs.map((spec) => [spec.id, []]));
  const errors = {};
  for (let round = 0; round < cfg.rounds; round++) {
    const order = round % 2 === 0 ? specs : [...specs].reverse();
    const needed = order.filter((spec) => !spec.floor).length * (cfg.killsPerRound + 1);
    await pool.prewarm(Math.min(needed, cfg.maxPrewarm));
    for (const spec of order) {
      if (errors[spec.id]) continue;
      const kills = spec.staleAfterMs ? cfg.staleKillsPerRound : cfg.killsPerRound;
      try {
        const lockPath = path.join(dir, `m3-${spec.id}.lock`);
        if (kills > 0) samples.get(spec.id).push(...(await crashBlock(pool, spec, lockPath, kills, cfg.settleMs)));
        if (spec.lockKind !== 'marker') {
          const cPath = path.join(dir, `m3c-${spec.id}.lock`);
          cHolder
            .get(spec.id)
            .push(...(await crashBlockCHolder(pool, spec, cPath, cfg.cHolderKillsPerRound, cfg.settleMs)));
        }
      } catch (error) {
        errors[spec.id] = String(error.message ?? error);
      }
    }
  }
  const results = {};
  const withCHolder = {};
  for (const spec of specs) {
    results[spec.id] = errors[spec.id]
      ? { na: `failed: ${errors[spec.id]}` }
      : { unit: 'ms', ...summarize(samples.get(spec.id)) };
    if (spec.lockKind === 'marker')
      withCHolder[spec.id] = { na: 'a marker file has no kernel lock for a C holder to take' };
    else if (errors[spec.id]) withCHolder[spec.id] = { na: `failed: ${errors[spec.id]}` };
    else withCHolder[spec.id] = { unit: 'ms', ...summarize(cHolder.get(spec.id)) };
  }
  return { results, withCHolder, samples };
}

// 4. CPU burned by waiters while the lock is held.
const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/**
 * CPU of a process: utime+stime from /proc/<pid>/stat (ticks, exited threads
 * included), and each live thread's schedstat (ns, exact).
 */
function cpuOf(pid) {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]); // fields 14 and 15
  const threads = new Map();
  try {
    for (const task of fs.readdirSync(`/proc/${pid}/task`)) {
      threads.set(task, Number(fs.readFileSync(`/proc/${pid}/task/${task}/schedstat`, 'latin1').split(' ')[0]));
    }
  } catch {
    return { statSeconds: ticks / CLOCK_TICKS, threads: null };
  }
  return { statSeconds: ticks / CLOCK_TICKS, threads };
}

/**
 * CPU seconds between two readings of cpuOf(): by stat, and by schedstat
 * summed per thread. A thread that exited in between (a parked waiter thread
 * leaving after its linger) counts for nothing, not for minus what it had
 * used before; one that started counts in full.
 */
function cpuBetween(before, after) {
  let ns = 0;
  if (before.threads === null || after.threads === null) ns = Number.NaN;
  else for (const [task, used] of after.threads) ns += used - (before.threads.get(task) ?? 0);
  return { statSeconds: after.statSeconds - before.statSeconds, schedSeconds: ns / 1e9 };
}

async function waitingCpu(pool, spec, lockPath, cfg) {
  const all = await pool.enlist(spec, lockPath, cfg.waiters + 1);
  const [holder, ...waiters] = all;
  let clean = false;
  try {
    await acquireNow(holder);
    for (const waiter of waiters) waiter.send('cycle');
    await Promise.all(waiters.map((waiter) => waiter.next('waiting')));
    await sleep(cfg.settleMs);
    const before = waiters.map((w) => cpuOf(w.pid));
    await sleep(cfg.holdMs);
    const after = waiters.map((w) => cpuOf(w.pid));
    let statSeconds = 0;
    let schedSeconds = 0;
    for (let i = 0; i < waiters.length; i++) {
      const used = cpuBetween(before[i], after[i]);
      statSeconds += used.statSeconds;
      schedSeconds += used.schedSeconds;
    }
    const stillWaiting = waiters.every((w) => !w.lines.some((line) => line.startsWith('acquired')));
    // Drain: every waiter takes the lock once and lets go, then all are idle.
    holder.send('release');
    await holder.next('released');
    await Promise.all(waiters.map((waiter) => waiter.next('cycled', cfg.drainMs)));
    clean = true;
    return { waiters: cfg.waiters, holdMs: cfg.holdMs, statSeconds, schedSeconds, stillWaiting };
  } finally {
    await pool.dismiss(all, { idle: clean });
  }
}

/** The same reading for pooled processes that wait for nothing: what idle Node costs. */
async function idleControl(pool, cfg) {
  const idle = await pool.enlist({ id: 'kl-async-flock-keep' }, path.join(os.tmpdir(), 'unused.lock'), cfg.waiters);
  try {
    const before = idle.map((w) => cpuOf(w.pid));
    await sleep(cfg.holdMs);
    const after = idle.map((w) => cpuOf(w.pid));
    let statSeconds = 0;
    let schedSeconds = 0;
    for (let i = 0; i < idle.length; i++) {
      const used = cpuBetween(before[i], after[i]);
      statSeconds += used.statSeconds;
      schedSeconds += used.schedSeconds;
    }
    return { waiters: cfg.waiters, holdMs: cfg.holdMs, statSeconds, schedSeconds };
  } finally {
    await pool.dismiss(idle, { idle: true });
  }
}

export async function waitingCost(cfg, specs, dir, pool) {
  const results = {};
  // Freshly started Node processes keep compiling and collecting for a
  // moment; let them go quiet so their start-up is not billed to waiting.
  // The full run's quiet time (15 s) outlasts V8's memory reducer, which
  // runs a full collection in every process some 8 s after its start-up
  // allocations: with 3 s it fell into the first contender's window and
  // billed it 0.03-0.10 CPU-s (16 processes, about 4 ms each), whatever the
  // contender or the build, and the idle control read 0.08-0.15 CPU-s.
  await pool.prewarm(cfg.waiters + 1);
  await sleep(cfg.quietMs);
  const control = await idleControl(pool, cfg);
  for (const spec of specs) {
    try {
      results[spec.id] = await waitingCpu(pool, spec, path.join(dir, `m4-${spec.id}.lock`), cfg);
    } catch (error) {
      results[spec.id] = { na: `failed: ${error.message}` };
    }
  }
  return { results, control };
}

// 5. fs.promises.readFile latency with waiters pending in the same process.
// The reader's waiters accumulate (0, then 8, then 64 in all) while another
// process holds the lock; when it releases they drain, and both go back to
// the pool.
export async function threadpoolHealth(cfg, specs, dir, pool) {
  const probe = path.join(dir, 'probe.txt');
  fs.writeFileSync(probe, 'x'.repeat(4096));
  const results = {};
  for (const spec of specs) {
    const na = inProcessWaitNa(spec);
    if (na) {
      results[spec.id] = { na };
      continue;
    }
    const lockPath = path.join(dir, `m5-${spec.id}.lock`);
    const [holder, reader] = await pool.enlist(spec, lockPath, 2);
    const byWaiters = {};
    let clean = false;
    let holderIdle = false;
    try {
      await acquireNow(holder);
      reader.send(`readfile ${cfg.waiterCounts.join(',')} ${cfg.samples} ${cfg.stallMs} ${probe} ${cfg.settleMs}`);
      for (const waiters of cfg.waiterCounts) {
        const result = JSON.parse(await reader.next('result', 120_000));
        byWaiters[waiters] = { stalled: result.stalled, stallMs: cfg.stallMs, ...summarize(result.latenciesUs) };
      }
      results[spec.id] = { byWaiters };
      holder.send('release');
      await holder.next('released');
      // Dozens of pollers drain slowly (their backoff reaches a second): a
      // new process is cheaper than waiting for them.
      holderIdle = true;
      if (spec.wait !== Wait.poll) await reader.next('drained', cfg.drainMs);
      clean = spec.wait !== Wait.poll;
    } catch (error) {
      results[spec.id] ??= { na: `failed: ${error.message}` };
    } finally {
      await pool.dismiss([holder], { idle: holderIdle });
      await pool.dismiss([reader], { idle: clean });
    }
  }
  return { results };
}

// 6. Contended throughput: processes appending one line each under the lock.
function checkLines(dataPath) {
  const text = fs.readFileSync(dataPath, 'latin1');
  const lines = text.split('\n');
  lines.pop();
  const torn = lines.filter((line) => !/^\d+ append$/.test(line)).length;
  return { lines: lines.length, torn };
}

async function throughputRound(pool, spec, dir, cfg) {
  const lockPath = path.join(dir, `m6-${spec.id}.lock`);
  const dataPath = path.join(dir, `m6-${spec.id}.data`);
  fs.writeFileSync(dataPath, '');
  const children = await pool.enlist(spec, lockPath, cfg.processes);
  let clean = false;
  try {
    const startAt = now() + 50_000_000n; // all start together, 50 ms from now
    for (const child of children) child.send(`append ${dataPath} ${cfg.durationMs} ${startAt}`);
    const counts = await Promise.all(children.map((child) => child.next('count', cfg.durationMs + 60_000)));
    clean = true;
    const cycles = counts.reduce((sum, count) => sum + Number(count), 0);
    return { cycles, ...checkLines(dataPath) };
  } finally {
    await pool.dismiss(children, { idle: clean });
  }
}

export async function throughput(cfg, specs, dir, pool) {
  const totals = new Map(specs.map((spec) => [spec.id, { cycles: 0, lines: 0, torn: 0, seconds: 0, perRound: [] }]));
  const errors = {};
  for (let round = 0; round < cfg.rounds; round++) {
    const order = round % 2 === 0 ? specs : [...specs].reverse();
    for (const spec of order) {
      if (errors[spec.id]) continue;
      try {
        const got = await throughputRound(pool, spec, dir, cfg);
        const total = totals.get(spec.id);
        total.cycles += got.cycles;
        total.lines += got.lines;
        total.torn += got.torn;
        total.seconds += cfg.durationMs / 1000;
        total.perRound.push(got.cycles / (cfg.durationMs / 1000));
      } catch (error) {
        errors[spec.id] = String(error.message ?? error);
      }
    }
  }
  const results = {};
  for (const spec of specs) {
    const total = totals.get(spec.id);
    results[spec.id] = errors[spec.id]
      ? { na: `failed: ${errors[spec.id]}` }
      : {
          processes: cfg.processes,
          cyclesPerSecond: total.cycles / total.seconds,
          perRound: total.perRound,
          linesOk: total.lines === total.cycles && total.torn === 0,
          torn: total.torn,
        };
  }
  return { results };
}

// 7. Scale: many distinct locks in one process, then many waiters in that
// process on one lock held by another.
async function scaleOne(pool, spec, dir, cfg) {
  const sub = path.join(dir, `m7-${spec.id}`);
  fs.mkdirSync(sub, { recursive: true });
  // The files exist beforehand: creating 10,000 inodes in a fresh directory
  // is the file system's cost, not the lock's (and it was most of it on ext4).
  for (let i = 0; i < cfg.locks; i++) fs.closeSync(fs.openSync(path.join(sub, `lock-${i}`), 'w'));
  const lockPath = path.join(dir, `m7-${spec.id}.lock`);
  const crowdNa = inProcessWaitNa(spec);
  // A fresh process, so its RSS growth is the locks' and not a reused heap's.
  const child = serveChild(spec, lockPath, ['--expose-gc']);
  const [holder] = crowdNa ? [] : await pool.enlist(spec, lockPath, 1);
  let clean = false;
  try {
    await child.next('ready', 60_000);
    if (holder) await acquireNow(holder);
    child.send(`scale ${sub} ${cfg.locks} ${crowdNa ? 0 : cfg.waiters}`);
    const many = JSON.parse(await child.next('many', 300_000));
    if (crowdNa) {
      clean = true;
      return { many, waiters: { na: crowdNa } };
    }
    await child.next('waiting', 60_000);
    await sleep(cfg.settleMs);
    holder.send('release');
    const released = BigInt(await holder.next('released'));
    let crowd;
    try {
      crowd = JSON.parse(await child.next('crowd', cfg.timeoutMs));
    } catch {
      const served = child.lines.filter((line) => line === 'served').length;
      return { many, waiters: { waiters: cfg.waiters, served, allServed: false, timedOut: true } };
    }
    clean = true;
    const longestMs = usBetween(released, BigInt(crowd.lastServed)) / 1e3;
    return {
      many,
      waiters: { waiters: cfg.waiters, served: crowd.served, allServed: crowd.served === cfg.waiters, longestMs },
    };
  } finally {
    await pool.dismiss([child], { idle: false });
    if (holder) await pool.dismiss([holder], { idle: clean });
    fs.rmSync(sub, { recursive: true, force: true });
  }
}

export async function scale(cfg, specs, dir, pool) {
  const results = {};
  for (const spec of specs) {
    if (spec.floor) {
      results[spec.id] = {
        many: { na: 'C floor: measured only for per-cycle costs' },
        waiters: { na: inProcessWaitNa(spec) },
      };
      continue;
    }
    try {
      results[spec.id] = await scaleOne(pool, spec, dir, cfg);
    } catch (error) {
      results[spec.id] = { many: { na: `failed: ${error.message}` }, waiters: { na: `failed: ${error.message}` } };
    }
  }
  return { results };
}
