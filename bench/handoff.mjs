// 2. Hand-off across processes: a holder releases, a waiter that is asleep
// in its acquire call holds the lock; the figure is the waiter's "acquired"
// instant minus the holder's release instant (both CLOCK_MONOTONIC).
//
// Method (issue 16):
// - The same holder for every waiter: a C process (bench/floor.c) of the
//   waiter's lock kind, so the C floor and a Node library are compared on
//   the waiter alone. (A Node holder alone adds microseconds of its own.)
//   Marker locks have no kernel lock a C process could hold: their holder is
//   a process of the same library.
// - The holder prints nothing inside the measured window: it releases on
//   "drop" and reports the instant afterwards, on "when".
// - The settle time (how long the waiter sleeps before the release) moves
//   every figure (idle vCPUs sleep deeper): it is swept, and ratios are
//   reported per settle time.
// - Short blocks, interleaved A B C … C B A across rounds, so load that
//   comes and goes (the machine is shared) falls on every contender alike;
//   ratios to the C floor are computed per round (same round, same settle)
//   and summarised as their median and range.
// - Two C waiters: one blocked in flock(2) (one wake-up: "the C floor"),
//   and one with the shape of every async Node waiter (a thread blocked in
//   flock wakes, verifies, records, then wakes the main thread asleep in
//   epoll_wait on an eventfd: two wake-ups). The second is compared with the
//   first (what the second wake-up costs here), and async waiters of a kept
//   kernel-lock file with the second (what is left above that shape).
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { floorServeChild, TWO_WAKE_FLOOR } from './children.mjs';
import { Wait } from './contenders.mjs';
import { summarize } from './stats.mjs';

const usBetween = (from, to) => Number(to - from) / 1e3;

/** The C floor waiter a contender's hand-off is compared with. */
export function handoffFloorFor(spec) {
  return spec.keepsFile ? 'c-floor-keep' : 'c-floor-remove';
}

/** Holder and waiter for one contender, kept for the whole measurement. */
async function pairFor(pool, spec, lockPath) {
  const [waiter] = await pool.enlist(spec, lockPath, 1);
  let holder;
  if (spec.lockKind === 'marker') {
    [holder] = await pool.enlist(spec, lockPath, 1);
  } else {
    // A C holder that unlinks on release exactly when the contender does.
    holder = floorServeChild(spec.lockKind, lockPath, spec.keepsFile ? 0 : 1);
    await holder.next('ready');
  }
  return { spec, holder, waiter };
}

async function block(pair, count, settleMs) {
  const { holder, waiter } = pair;
  const latencies = [];
  for (let i = 0; i < count; i++) {
    holder.send('acquire');
    await holder.next('acquired');
    waiter.send('acquire');
    await waiter.next('waiting');
    await sleep(settleMs); // the waiter reaches its kernel sleep (or its poll timer)
    holder.send('drop');
    const acquired = BigInt(await waiter.next('acquired'));
    holder.send('when');
    const dropped = BigInt(await holder.next('dropped'));
    latencies.push(usBetween(dropped, acquired));
    waiter.send('release');
    await waiter.next('released');
  }
  return latencies;
}

/** Per-round ratio of a contender's block p50 to the floor's block p50 in the same round. */
function roundRatios(blocks, floorBlocks) {
  const ratios = [];
  for (let r = 0; r < Math.min(blocks.length, floorBlocks.length); r++) {
    const a = summarize(blocks[r]).p50;
    const b = summarize(floorBlocks[r]).p50;
    if (Number.isFinite(a) && Number.isFinite(b) && b > 0) ratios.push(a / b);
  }
  return ratios;
}

/** p50 and p99 ratios of a contender's hand-off to a floor's, and the per-round p50 ratios. */
function ratiosTo(entry, mine, floorBlocks) {
  const floor = summarize(floorBlocks.flat());
  const ratios = roundRatios(mine, floorBlocks);
  const sorted = [...ratios].sort((a, b) => a - b);
  return {
    ratioP50: entry.p50 / floor.p50,
    ratioP99: entry.p99 / floor.p99,
    roundRatios: ratios.map((r) => Number(r.toFixed(3))),
    roundRatioMedian: sorted[Math.floor(sorted.length / 2)],
    roundRatioMin: sorted[0],
    roundRatioMax: sorted[sorted.length - 1],
  };
}

/**
 * Whether a contender's hand-off is also compared with the two-wake C
 * waiter: an async waiter of a kernel lock that keeps the file, i.e. one
 * that does the two-wake waiter's work in the same shape (a thread that
 * sleeps in the kernel, then the event loop).
 */
export function comparesWithTwoWake(spec) {
  return !spec.floor && !spec.sync && spec.keepsFile && spec.lockKind !== 'marker' && spec.wait !== Wait.poll;
}

export async function handoff(cfg, specs, dir, pool) {
  const perSettle = {};
  const errors = {};
  const pairs = [];
  for (const spec of specs) {
    try {
      pairs.push(await pairFor(pool, spec, path.join(dir, `m2-${spec.id}.lock`)));
    } catch (error) {
      errors[spec.id] = String(error.message ?? error);
    }
  }
  const samples = {};
  try {
    for (const settleMs of cfg.settles) {
      const blocks = new Map(pairs.map((pair) => [pair.spec.id, []]));
      const loads = [];
      for (let round = 0; round < cfg.rounds; round++) {
        const order = round % 2 === 0 ? pairs : [...pairs].reverse();
        loads.push(Number(os.loadavg()[0].toFixed(2)));
        for (const pair of order) {
          const { spec } = pair;
          if (errors[spec.id]) continue;
          const count = spec.wait === Wait.poll ? cfg.pollPerBlock : cfg.perBlock;
          try {
            blocks.get(spec.id).push(await block(pair, count, settleMs));
          } catch (error) {
            errors[spec.id] = String(error.message ?? error);
          }
        }
      }
      const results = {};
      for (const spec of specs) {
        if (errors[spec.id]) {
          results[spec.id] = { na: `failed: ${errors[spec.id]}` };
          continue;
        }
        const mine = blocks.get(spec.id);
        const all = mine.flat();
        const entry = { unit: 'us', ...summarize(all) };
        const floorId = handoffFloorFor(spec);
        // The two-wake C waiter is a floor too, compared with the one-wake one.
        if (floorId !== spec.id && blocks.has(floorId)) {
          entry.floor = floorId;
          Object.assign(entry, ratiosTo(entry, mine, blocks.get(floorId)));
        }
        if (comparesWithTwoWake(spec) && blocks.has(TWO_WAKE_FLOOR)) {
          entry.twoWake = ratiosTo(entry, mine, blocks.get(TWO_WAKE_FLOOR));
        }
        results[spec.id] = entry;
        samples[`${spec.id}@${settleMs}`] = all;
      }
      perSettle[settleMs] = { results, loads };
    }
  } finally {
    // A waiter may be left inside an acquire by a failure: none goes back to the pool.
    for (const pair of pairs) await pool.dismiss([pair.waiter, pair.holder], { idle: false });
  }
  // The first settle time stands for "the" hand-off in tables that show one figure.
  return { results: perSettle[cfg.settles[0]].results, perSettle, samples };
}
