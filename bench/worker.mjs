// A bench child process: holds, waits for or hammers a lock with one
// contender, and reports on stdout, one line per event, written with
// writeSync so a child that then blocks its thread in a synchronous wait has
// already said so. Timestamps are process.hrtime.bigint() (CLOCK_MONOTONIC on
// Linux), comparable across processes.
//
//   serve <contender> <path>      then commands on stdin (see serve())
import fs from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import readline from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { contender } from './contenders.mjs';

const [mode, id, ...args] = process.argv.slice(2);
const now = () => process.hrtime.bigint();
const say = (line) => fs.writeSync(1, `${line}\n`);

function rssBytes() {
  return process.memoryUsage.rss();
}

// Commands: "use <contender> <path>" (switch; the bench reuses a pool of
// these processes across contenders), "acquire", "release", "drop" (release
// silently) and "when" (the instant of the last drop), "cycle" (acquire
// then release at once: drains waiters), "append <data> <ms> <start ns>"
// (throughput: from the given monotonic instant on), "loop <start ns> <ms>
// <hold µs> <pause µs>" (a crowd member, bench/twowake.mjs), "readfile <counts>
// <samples> <stall ms> <probe> <settle ms>", "scale <dir> <count> <waiters>",
// "held <dir> <count> <rounds> <ms>", "crowd <count>", "exit".
async function serve(id, lockPath) {
  let acquire = await contender(id).load();
  let release = null;
  let dropped = 0n;
  say(`ready ${process.pid}`);
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [command, ...words] = line.split(' ');
    if (command === 'use') {
      acquire = await contender(words[0]).load();
      lockPath = words[1];
      say('using');
    } else if (command === 'acquire') {
      say(`waiting ${now()}`);
      release = await acquire(lockPath);
      say(`acquired ${now()}`);
    } else if (command === 'release') {
      const t = now();
      await release();
      release = null;
      say(`released ${t}`);
    } else if (command === 'drop') {
      // A hand-off's holder: nothing is written inside the measured window.
      dropped = now();
      await release();
      release = null;
    } else if (command === 'when') {
      say(`dropped ${dropped}`);
    } else if (command === 'cycle') {
      say(`waiting ${now()}`);
      const drop = await acquire(lockPath);
      say(`acquired ${now()}`);
      await drop();
      say('cycled');
    } else if (command === 'readfile') {
      const [counts, samples, stallMs, probe, settleMs] = words;
      const numbers = [Number(samples), Number(stallMs), Number(settleMs)];
      await readfileLatency(acquire, lockPath, counts.split(',').map(Number), ...numbers, probe);
    } else if (command === 'held') {
      await heldMany(acquire, lockPath, words[0], Number(words[1]), Number(words[2]), Number(words[3]));
    } else if (command === 'crowd') {
      await crowd(acquire, lockPath, Number(words[0]));
    } else if (command === 'scale') {
      await scale(acquire, lockPath, words[0], Number(words[1]), Number(words[2]));
    } else if (command === 'loop') {
      const [startNs, ms, holdUs, pauseUs] = words;
      await loop(acquire, lockPath, BigInt(startNs), Number(ms), Number(holdUs), Number(pauseUs));
    } else if (command === 'append') {
      say(`count ${await append(acquire, lockPath, words[0], Number(words[1]), BigInt(words[2]))}`);
    } else if (command === 'exit') {
      break;
    }
  }
  process.exit(0);
}

async function append(acquire, lockPath, dataPath, durationMs, startNs) {
  const out = fs.openSync(dataPath, 'a');
  // Two writes per line: if the lock ever let two appenders in at once, their
  // halves would interleave and the parent's check of every line would fail.
  const head = `${process.pid} `;
  const wait = Number(startNs - now()) / 1e6;
  if (wait > 0) await sleep(wait);
  const end = performance.now() + durationMs;
  let count = 0;
  while (performance.now() < end) {
    const release = await acquire(lockPath);
    fs.writeSync(out, head);
    fs.writeSync(out, 'append\n');
    await release();
    count++;
  }
  fs.closeSync(out);
  return count;
}

// A crowd member (bench/twowake.mjs), as floor.c's "loop": from the start
// instant on, for `ms`, acquire, hold, release, pause. Reports "looped 0 <n>"
// and per acquisition the instant it began, again (when the wait entered
// the kernel is not visible from here) and the instant it held the lock.
async function loop(acquire, lockPath, startNs, ms, holdUs, pauseUs) {
  const wait = Number(startNs - now()) / 1e6;
  if (wait > 0) await sleep(wait);
  const end = now() + BigInt(Math.round(ms * 1e6));
  const at = [];
  for (let began = now(); began < end; began = now()) {
    const release = await acquire(lockPath);
    at.push(began, began, now());
    await sleep(holdUs / 1000);
    await release();
    if (pauseUs > 0) await sleep((pauseUs / 1000) * (0.5 + Math.random())); // jittered, as floor.c's
  }
  say(`looped 0 ${at.length / 3} ${at.join(' ')}`);
}

// fs.promises.readFile latency while acquisitions of a lock held by another
// process are pending in this process, for each (cumulative) waiter count.
// A read slower than `stallMs` is a stall (the threadpool is exhausted):
// every later count is then reported stalled too, without waiting again.
async function readfileLatency(acquire, lockPath, counts, samples, stallMs, settleMs, probe) {
  const pending = [];
  let stalled = false;
  for (const waiters of counts) {
    if (stalled) {
      say(`result ${JSON.stringify({ latenciesUs: [], stalled })}`);
      continue;
    }
    // Each waiter lets go as soon as it is served, so the process drains
    // (and can be reused) once the holder releases.
    while (pending.length < waiters) pending.push(acquire(lockPath).then((release) => release()));
    await sleep(waiters > 0 ? settleMs : 0); // let the waits reach the kernel
    const latencies = [];
    for (let i = 0; i < samples; i++) {
      const t0 = now();
      const read = await Promise.race([readFile(probe).then(() => true), sleep(stallMs).then(() => false)]);
      if (!read) {
        stalled = true;
        break;
      }
      latencies.push(Number(now() - t0) / 1e3);
    }
    say(`result ${JSON.stringify({ latenciesUs: latencies, stalled })}`);
  }
  await Promise.all(pending);
  say('drained');
}

// Holds `count` distinct locks (time, RSS), releases them, then starts
// `waiters` acquisitions of one lock held by another process and reports
// each as it is served; the parent releases the holder after "waiting".
async function scale(acquire, lockPath, dir, count, waiters) {
  globalThis.gc?.();
  const rssBefore = rssBytes();
  const releases = [];
  const t0 = now();
  for (let i = 0; i < count; i++) releases.push(await acquire(path.join(dir, `lock-${i}`)));
  const acquireMs = Number(now() - t0) / 1e6;
  const rssHeld = rssBytes();
  const t1 = now();
  for (const release of releases) await release();
  const releaseMs = Number(now() - t1) / 1e6;
  say(`many ${JSON.stringify({ count, acquireMs, releaseMs, rssDeltaBytes: rssHeld - rssBefore, rssHeld })}`);
  if (waiters === 0) return;
  const served = [];
  const all = [];
  for (let i = 0; i < waiters; i++) {
    all.push(
      acquire(lockPath).then(async (release) => {
        served.push(now());
        say('served');
        await release();
      }),
    );
  }
  say(`waiting ${now()}`);
  await Promise.all(all);
  let last = 0n;
  for (const at of served) if (at > last) last = at;
  say(`crowd ${JSON.stringify({ served: served.length, lastServed: String(last) })}`);
}

// The lock cycle on `lockPath` with 1 other lock held and with `count`
// held (files lock-0 .. lock-<count-1> in `dir`, created beforehand), in
// alternating rounds of `ms` each: "held <json>" with the per-round p50s.
async function heldMany(acquire, lockPath, dir, count, rounds, ms) {
  const cycle = async () => {
    const samples = [];
    const end = performance.now() + ms;
    while (performance.now() < end) {
      const t0 = now();
      const release = await acquire(lockPath);
      await release();
      samples.push(Number(now() - t0) / 1e3);
    }
    samples.sort((a, b) => a - b);
    return samples[samples.length >> 1];
  };
  const first = await acquire(path.join(dir, 'lock-0'));
  await cycle(); // warm-up
  const one = [];
  const many = [];
  for (let round = 0; round < rounds; round++) {
    one.push(await cycle());
    const held = [];
    for (let i = 1; i < count; i++) held.push(await acquire(path.join(dir, `lock-${i}`)));
    many.push(await cycle());
    for (const release of held) await release();
  }
  await first();
  say(`held ${JSON.stringify({ count, one, many })}`);
}

// The tids of this process's threads that are blocked in flock(2) or
// fcntl(2) right now (x86-64 and arm64 syscall numbers; /proc/<tid>/syscall).
const LOCK_SYSCALLS = new Set(process.arch === 'arm64' ? ['32', '25'] : ['73', '72']);
function blockedInLockCall() {
  const blocked = new Set();
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const call = fs.readFileSync(`/proc/self/task/${tid}/syscall`, 'latin1').split(' ')[0];
      if (LOCK_SYSCALLS.has(call)) blocked.add(tid);
    } catch {
      // the thread ended
    }
  }
  return blocked;
}

// N waiters on one lock another process holds. Each is started only once
// the previous one sleeps in the kernel (its thread is blocked in the lock
// call), so the kernel's queue order is the start order. Reports "crowd
// ready"; after the holder's release every waiter, once served, releases at
// once. Then: CPU of this process from the release to the last one served
// (getrusage: every thread, exited ones included), and how many were served
// before a waiter that started earlier and was still waiting.
async function crowd(acquire, lockPath, count) {
  const order = [];
  const all = [];
  let blocked = blockedInLockCall().size;
  for (let i = 0; i < count; i++) {
    all.push(
      acquire(lockPath).then(async (release) => {
        order.push(i);
        await release();
      }),
    );
    const deadline = performance.now() + 5000;
    while (blockedInLockCall().size <= blocked && performance.now() < deadline) await sleep(0.2);
    blocked++;
  }
  const cpu0 = process.cpuUsage();
  const t0 = now();
  say('crowd ready');
  await Promise.all(all);
  const cpu = process.cpuUsage(cpu0);
  const wallMs = Number(now() - t0) / 1e6;
  let overtakers = 0;
  const waiting = new Set(order.map((_, i) => i));
  for (const served of order) {
    waiting.delete(served);
    for (const other of waiting) {
      if (other < served) {
        overtakers++;
        break;
      }
    }
  }
  say(`crowd ${JSON.stringify({ count, cpuUs: cpu.user + cpu.system, wallMs, overtakers })}`);
}

if (mode !== 'serve') throw new Error(`unknown mode ${mode}`);
await serve(id, args[0]);
