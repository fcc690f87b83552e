#!/usr/bin/env node
// Experiments on the hand-off's floor for an async waiter (issue 16; docs/
// PERFORMANCE.md, "The hand-off's floor for an async waiter"). Not part of
// `npm run bench`, which measures the two C waiters that matter (bench/
// handoff.mjs); this measures two ideas for closing the gap between them,
// and the order in which a crowd of waiters of each kind is served.
//
//   node bench/twowake.mjs [--rounds=20] [--per-block=25] [--crowd-ms=3000] [--crowd-runs=3]
//
// A. Hand-off from a C holder, per settle time (1, 3, 10 ms), blocks
//    interleaved as in bench/handoff.mjs, four C waiters (bench/floor.c):
//    blocked in flock (one wake-up); thread + eventfd + epoll (two wake-ups,
//    the shape of every async Node waiter); the same with the waiter thread
//    pinned to the CPU the main thread last ran on (does waking on the same
//    CPU help?); inotify on the lock file in the main thread's epoll set,
//    retrying without blocking on every close (one wake-up, no thread).
//    Ratios are to the blocked waiter, per round.
// B. Order: 8 processes of one kind loop acquire, hold 1 ms, release, for
//    --crowd-ms, started together; then the same with a pause of about
//    1 ms (jittered 0.5-1.5 ms) after each release (so the releaser does not
//    race the waiter it woke). A
//    grant "overtakes" when another process that began waiting earlier is
//    still waiting: the share of grants that did, for blocked waiters (the
//    kernel's queue), two-wake waiters and inotify waiters; the same counted
//    from when each entered its wait (the blocking call: on the waiter
//    thread for two-wake waiters); kernel-lock's lock() and lockSync() in
//    Node processes beside them; the wait's distribution; and how many
//    inotify waits ended only on the fallback timer (no close event after
//    the release: see bench/floor-waiters.c).
//
// About 2.5 minutes. Writes nothing: the report goes to stdout, progress to
// stderr.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFloor, Child, floorBinary, floorContenders, Pool, serveChild } from './children.mjs';
import { contender } from './contenders.mjs';
import { handoff } from './handoff.mjs';
import { fmt, summarize } from './stats.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const argv = process.argv.slice(2);
const numberArg = (name, fallback) => {
  const arg = argv.find((a) => a.startsWith(`--${name}=`));
  return arg ? Number(arg.slice(name.length + 3)) : fallback;
};
const log = (message) => process.stderr.write(`[twowake ${(performance.now() / 1000).toFixed(1)} s] ${message}\n`);
const load = () => os.loadavg()[0].toFixed(2);

const blocked = floorContenders.find((spec) => spec.id === 'c-floor-keep');
const twoWake = floorContenders.find((spec) => spec.id === 'c-floor-twowake');
const pinned = {
  ...twoWake,
  id: 'c-floor-twowake-pin',
  label: 'C, thread pinned to the main thread CPU + eventfd + epoll',
  serveArgs: ['pin'],
};
const inotify = {
  ...twoWake,
  id: 'c-floor-inotify',
  label: 'C, inotify in epoll, retry without blocking (no thread)',
  serveMode: 'serve-inotify',
};

async function handoffPart(dir) {
  const cfg = { settles: [1, 3, 10], rounds: numberArg('rounds', 20), perBlock: numberArg('per-block', 25) };
  const specs = [blocked, twoWake, pinned, inotify];
  const pool = new Pool(path.join(dir, 'scratch.lock'));
  let measured;
  try {
    measured = await handoff(cfg, specs, dir, pool);
  } finally {
    await pool.close();
  }
  const lines = [
    `### A. Hand-off from a C holder: ${cfg.rounds} rounds × ${cfg.perBlock} per waiter and settle time`,
    '',
    '| waiter | settle ms | p50 µs | p99 µs | max µs | p50 ÷ blocked | p99 ÷ blocked | per-round p50 ÷ blocked: median (min–max) | p50 ÷ two-wake | load (1 min) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const [settle, { results, loads }] of Object.entries(measured.perSettle)) {
    for (const spec of specs) {
      const r = results[spec.id];
      if (r.na) {
        lines.push(`| ${spec.label} | ${settle} | n/a: ${r.na} | | | | | | | |`);
        continue;
      }
      const two = results[twoWake.id];
      const ratio = (value) => (value === undefined ? '1' : `${fmt(value)}×`);
      lines.push(
        `| ${spec.label} | ${settle} | ${fmt(r.p50)} | ${fmt(r.p99)} | ${fmt(r.max)} | ${ratio(r.ratioP50)} | ${ratio(r.ratioP99)} | ` +
          `${r.roundRatios ? `${fmt(r.roundRatioMedian)}× (${fmt(r.roundRatioMin)}–${fmt(r.roundRatioMax)})` : ''} | ` +
          `${spec === twoWake || spec === blocked ? '' : `${fmt(r.p50 / two.p50)}×`} | ${Math.min(...loads)}–${Math.max(...loads)} |`,
      );
    }
  }
  return lines.join('\n');
}

/**
 * Grants that went to a process while another, which began (`since`
 * 'began': asked for the lock; 'queued': entered the wait) earlier, still
 * waited.
 */
function overtakes(records, since) {
  let count = 0;
  for (const grant of records) {
    if (records.some((o) => o.proc !== grant.proc && o[since] < grant[since] && o.held > grant.held)) count++;
  }
  return count;
}

/** A crowd member: a C waiter of the given serve mode, or a Node worker with a contender. */
function member(mode, lockPath) {
  if (mode.startsWith('serve')) return new Child(floorBinary, [mode, lockPath, '0']);
  return serveChild(contender(mode), lockPath);
}

async function crowdRun(mode, dir, members, ms, pauseUs) {
  const lockPath = path.join(dir, `crowd-${mode}.lock`);
  const children = Array.from({ length: members }, () => member(mode, lockPath));
  try {
    await Promise.all(children.map((child) => child.next('ready', 60_000)));
    const start = process.hrtime.bigint() + 200_000_000n;
    for (const child of children) child.send(`loop ${start} ${ms} 1000 ${pauseUs}`);
    const lines = await Promise.all(children.map((child) => child.next('looped', ms + 30_000)));
    const records = [];
    let late = 0;
    lines.forEach((line, proc) => {
      const [lateWakes, n, ...instants] = line.split(' ').map(BigInt);
      late += Number(lateWakes);
      for (let i = 0; i < Number(n); i++) {
        const [began, queued, held] = instants.slice(3 * i, 3 * i + 3);
        // A grant made without waiting entered no queue: it "queued" as it got the lock.
        records.push({ proc, began, queued: queued === 0n ? held : queued, held });
      }
    });
    const waits = summarize(records.map((r) => Number(r.held - r.began) / 1e6));
    return {
      grants: records.length,
      overtakes: overtakes(records, 'began'),
      byQueue: overtakes(records, 'queued'),
      late,
      waits,
    };
  } finally {
    for (const child of children) child.kill();
    await Promise.all(children.map((child) => child.gone()));
  }
}

async function crowdPart(dir) {
  const ms = numberArg('crowd-ms', 3000);
  const runs = numberArg('crowd-runs', 3);
  const members = 8;
  // kernel-lock's own waiters too (Node workers; they cannot see when their
  // wait entered the kernel, so their second share repeats the first).
  const modes = [
    ['serve', blocked.label],
    ['serve-async', twoWake.label],
    ['serve-inotify', inotify.label],
    ['kl-async-flock-keep', contender('kl-async-flock-keep').label],
    ['kl-sync-flock-keep', contender('kl-sync-flock-keep').label],
  ];
  const lines = [
    `### B. Order: ${members} processes loop acquire, hold 1 ms, release, [pause], for ${ms} ms (${runs} runs, modes interleaved)`,
    '',
    '| waiters | pause after release, µs | run | grants | served before an earlier waiter | share | … before one that entered its wait earlier | wait p50 / p99 / max ms | waits ended by the fallback timer | load (1 min) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  // Without a pause the releaser tries again at once and often wins before
  // the waiter the kernel woke runs (barging, whatever the waiter's shape);
  // a 1 ms pause takes the releaser out of the race and leaves the waiters'.
  for (const pauseUs of [0, 1000]) {
    for (let run = 0; run < runs; run++) {
      const order = run % 2 === 0 ? modes : [...modes].reverse();
      for (const [mode, label] of order) {
        log(`crowd ${mode}, pause ${pauseUs} µs, run ${run + 1}`);
        const r = await crowdRun(mode, dir, members, ms, pauseUs);
        lines.push(
          `| ${label} | ${pauseUs} | ${run + 1} | ${r.grants} | ${r.overtakes} | ${fmt((100 * r.overtakes) / r.grants)}% | ${fmt((100 * r.byQueue) / r.grants)}% | ${fmt(r.waits.p50)} / ${fmt(r.waits.p99)} / ${fmt(r.waits.max)} | ${mode === 'serve-inotify' ? r.late : '–'} | ${load()} |`,
        );
      }
    }
  }
  return lines.join('\n');
}

buildFloor();
const dir = fs.mkdtempSync(path.join(benchDir, '.build', 'twowake-'));
try {
  const loadStart = os.loadavg().map((v) => v.toFixed(2));
  log('A. hand-off …');
  const a = await handoffPart(dir);
  log('B. order …');
  const b = await crowdPart(dir);
  process.stdout.write(
    `## Async waiter experiments (${new Date().toISOString()}; ${os.cpus().length} CPUs, Linux ${os.release()}; load at start ${loadStart.join(' ')}, at end ${os
      .loadavg()
      .map((v) => v.toFixed(2))
      .join(' ')})\n\n${a}\n\n${b}\n`,
  );
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
process.exit(0);
