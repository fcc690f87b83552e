// 9. N waiters in one process on one lock (issue 16): CPU per hand-off
// should stay flat from 8 to 512 waiters, and the waiters should be served
// in the order they entered the kernel's queue (the kernel keeps FIFO order
// among blocked flock/OFD waiters). The holder is a C process (unlinking on
// release for the remove-on-release contenders, as they do); each served
// waiter releases at once, so every release is a hand-off inside the crowd.
// The process's CPU (getrusage, every thread) from the first release to the
// last waiter served, divided by the waiters, is the CPU per hand-off.
import path from 'node:path';
import { floorServeChild } from './children.mjs';
import { Wait } from './contenders.mjs';

async function crowdOnce(pool, spec, lockPath, count) {
  const holder = floorServeChild(spec.lockKind, lockPath, spec.keepsFile ? 0 : 1);
  await holder.next('ready');
  const [waiter] = await pool.enlist(spec, lockPath, 1);
  let clean = false;
  try {
    holder.send('acquire');
    await holder.next('acquired');
    waiter.send(`crowd ${count}`);
    await waiter.next('crowd ready', 120_000);
    holder.send('release');
    await holder.next('released');
    const result = JSON.parse(await waiter.next('crowd', 120_000));
    clean = true;
    return { ...result, cpuPerHandoffUs: result.cpuUs / count };
  } finally {
    await pool.dismiss([holder], { idle: false });
    await pool.dismiss([waiter], { idle: clean });
  }
}

/** Why a contender cannot have a crowd of waits in one process, or null. */
function crowdNa(spec) {
  if (spec.floor) return 'C floor: one waiter per process';
  if (spec.sync) return 'a synchronous wait blocks the JS thread: one waiter per thread';
  if (spec.lockKind === 'marker') return 'polling locks have no kernel queue';
  if (spec.lockKind === 'posix') return 'POSIX locks belong to the process: its waiters do not exclude each other';
  if (spec.wait === Wait.threadpool) return "its waits occupy libuv's threadpool (4 threads): the rest queue there";
  return null;
}

export async function crowd(cfg, specs, dir, pool) {
  const results = {};
  const chosen = specs.filter((spec) => crowdNa(spec) === null);
  for (const spec of specs) if (!chosen.includes(spec)) results[spec.id] = { na: crowdNa(spec) };
  for (const spec of chosen) results[spec.id] = { byCount: {} };
  // Interleaved: every contender at a count, then the next count, in rounds.
  for (let round = 0; round < cfg.rounds; round++) {
    for (const count of cfg.counts) {
      const order = round % 2 === 0 ? chosen : [...chosen].reverse();
      for (const spec of order) {
        const entry = results[spec.id];
        if (entry.na) continue;
        try {
          const got = await crowdOnce(pool, spec, path.join(dir, `m9-${spec.id}-${count}.lock`), count);
          entry.byCount[count] ??= [];
          entry.byCount[count].push(got);
        } catch (error) {
          results[spec.id] = { na: `failed: ${error.message ?? error}` };
        }
      }
    }
  }
  for (const spec of chosen) {
    const entry = results[spec.id];
    if (entry.na) continue;
    const summary = {};
    for (const [count, runs] of Object.entries(entry.byCount)) {
      const perHandoff = runs.map((r) => r.cpuPerHandoffUs).sort((a, b) => a - b);
      summary[count] = {
        runs: runs.length,
        cpuPerHandoffUs: perHandoff[Math.floor(perHandoff.length / 2)],
        overtakers: Math.max(...runs.map((r) => r.overtakers)),
        wallMs: runs.map((r) => r.wallMs).sort((a, b) => a - b)[Math.floor(runs.length / 2)],
      };
    }
    const counts = cfg.counts;
    const first = summary[counts[0]];
    const last = summary[counts[counts.length - 1]];
    results[spec.id] = {
      byCount: summary,
      flatness: first && last ? last.cpuPerHandoffUs / first.cpuPerHandoffUs : Number.NaN,
    };
  }
  return { results };
}
