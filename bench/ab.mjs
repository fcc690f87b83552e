#!/usr/bin/env node
// Two builds of the library side by side in ONE process, for differences of a
// few per cent that separate runs cannot show on a loaded machine: the same
// process, heap and CPU for both, blocks alternating A B B A, per-round ratios.
//
//   node bench/ab.mjs <other checkout> cycle   [rounds]            uncontended `await lock(); await release()`
//   node bench/ab.mjs <other checkout> handoff [rounds] [settle ms] lock() granted after a C holder's release
//
// A is the other checkout (it must be built: its build/Release addon is the
// one its bundle loads), B is this one; each build's src/lock is bundled
// (bench/bundle.mjs). The hand-off's holder is bench/floor.c (`floor serve`), as in run.mjs;
// a block is 25 hand-offs, the latency the release's instant to the waiter's
// continuation.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { importBundled } from './bundle.mjs';
import { buildFloor, floorBinary } from './children.mjs';
import { summarize } from './stats.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(benchDir, '..');
const buildDir = path.join(benchDir, '.build');
const [other, mode = 'cycle', roundsArg, settleArg] = process.argv.slice(2);
if (!other || !['cycle', 'handoff'].includes(mode)) {
  console.error('usage: node bench/ab.mjs <other checkout> cycle|handoff [rounds] [settle ms]');
  process.exit(2);
}
const rounds = Number(roundsArg ?? (mode === 'cycle' ? 20 : 30));
const settleMs = Number(settleArg ?? 3);

async function load(checkout, tag) {
  const acquire = path.join(checkout, 'src', 'lock', 'acquire.ts');
  const { lock } = await importBundled(`export { lock } from '${acquire}';\n`, `ab-${tag}`, checkout);
  return { name: path.basename(checkout), lock };
}

const builds = [await load(path.resolve(other), 'a'), await load(root, 'b')];
fs.mkdirSync(buildDir, { recursive: true });
const opts = { kind: 'flock', removeOnRelease: false };
const now = () => process.hrtime.bigint();

/** Uncontended cycles for 100 ms; µs per cycle. */
async function cycleBlock(build, lockPath) {
  const samples = [];
  const end = performance.now() + 100;
  while (performance.now() < end) {
    const t0 = now();
    const handle = await build.lock(lockPath, opts);
    await handle.release();
    samples.push(Number(now() - t0) / 1e3);
  }
  return samples;
}

function floorHolder(lockPath) {
  buildFloor();
  const child = spawn(floorBinary, ['serve', lockPath, '0'], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  let waiting = null;
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    if (waiting) {
      const resolve = waiting;
      waiting = null;
      resolve(line);
    } else lines.push(line);
  });
  return {
    next: () => (lines.length > 0 ? Promise.resolve(lines.shift()) : new Promise((resolve) => (waiting = resolve))),
    send: (line) => child.stdin.write(`${line}\n`),
    close: () => child.kill(),
  };
}

/** 25 hand-offs from the C holder to lock(); µs from the release to the waiter's continuation. */
async function handoffBlock(build, lockPath, holder) {
  const samples = [];
  for (let i = 0; i < 25; i++) {
    holder.send('acquire');
    await holder.next(); // waiting
    await holder.next(); // acquired
    let continued = 0n;
    const granted = build.lock(lockPath).then((handle) => {
      continued = now();
      return handle;
    });
    await sleep(settleMs);
    holder.send('drop'); // releases; prints nothing inside the measured window
    const handle = await granted;
    holder.send('when');
    const dropped = BigInt((await holder.next()).split(' ')[1]);
    handle.releaseSync();
    samples.push(Number(continued - dropped) / 1e3);
  }
  return samples;
}

const lockPath = path.join(buildDir, `ab-${mode}.lock`);
const holder = mode === 'handoff' ? floorHolder(lockPath) : null;
if (holder) await holder.next(); // ready
const perRound = builds.map(() => []);
const pooled = builds.map(() => []);
for (let round = -1; round < rounds; round++) {
  for (const i of round % 2 === 0 ? [0, 1] : [1, 0]) {
    const samples =
      mode === 'cycle' ? await cycleBlock(builds[i], lockPath) : await handoffBlock(builds[i], lockPath, holder);
    if (round < 0) continue; // warm-up
    perRound[i].push(summarize(samples).p50);
    pooled[i].push(...samples);
  }
}
holder?.close();
const ratios = summarize(perRound[1].map((b, r) => b / perRound[0][r]));
const what = mode === 'cycle' ? 'uncontended cycle' : `hand-off, settle ${settleMs} ms`;
console.log(`${what}, ${rounds} rounds, load ${os1()}`);
for (const [i, build] of builds.entries()) {
  console.log(`  ${i === 0 ? 'A' : 'B'} ${build.name}: p50 ${summarize(pooled[i]).p50.toFixed(2)} µs`);
}
console.log(`  B ÷ A per round: median ${ratios.p50.toFixed(3)} (${ratios.min.toFixed(2)}–${ratios.max.toFixed(2)})`);

function os1() {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
}
