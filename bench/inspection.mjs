#!/usr/bin/env node
// `npm run bench:inspection` (also the last part of `npm run bench`): what
// inspection costs on a busy host, and what it costs the host.
//
// A. The event loop. Another process holds 10,000 flock locks, then 10,000
//    OFD locks. For inspect(), scan(), sweep() and the holder description
//    of lock()'s timeout (a kernel-lock holder, whose record is confirmed
//    through its descriptors; and a holder without a record: flock(1), or
//    Python holding an OFD lock), each round records the longest block of
//    this process's event loop while the call runs, and the call's latency.
//    The block is measured by test/fixtures/loop-monitor.mjs: by default
//    loopMonitor(), a 1 ms timer whose gaps, minus the time the thread
//    waited for a CPU, minus the 1 ms itself, bound the longest block (±1 ms:
//    libuv's timers count whole milliseconds); with --spin, spinMonitor(), a
//    setImmediate chain that times every loop iteration to the microsecond,
//    but keeps a core busy, which on a virtual machine whose host steals CPU
//    time makes it the thread that pays for the steal: use it on a quiet machine. An idle loop
//    is measured the same way over windows as long as a typical call, in the
//    same run: on a shared machine that is the floor of what can be seen.
// B. The host. /proc/locks is generated under the kernel's global file-lock
//    semaphore, taken for writing, so every read stalls every flock()/fcntl()
//    lock call on the host. A separate process measures its lock cycles
//    while another process loops over: nothing; synchronous reads of
//    /proc/locks; lock() timeouts against a kernel-lock holder; inspect().
//
// --baseline=<dist/index.js> measures another build side by side (in the
// same rounds, interleaved), e.g. a build of an earlier commit, for a
// before/after. --quick: fewer rounds. Results: bench/inspection-results.{json,md}.
// Run with node --expose-gc (as `npm run bench:inspection` does), so that every
// call starts on a collected heap.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { loopMonitor, spinMonitor } from '../test/fixtures/loop-monitor.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(benchDir, '..');
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const spin = argv.includes('--spin');
const option = (name) => argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
const LOCKS = Number(option('locks') ?? 10_000);
const ROUNDS = quick ? 5 : 20;
const COST_MS = quick ? 1500 : 4000;
const log = (message) =>
  process.stderr.write(`[bench:inspection ${(performance.now() / 1000).toFixed(1)} s] ${message}\n`);

const currentDist = path.join(root, 'dist', 'index.js');
const baselineDist = option('baseline');
const builds = [{ name: 'current', dist: currentDist, api: await import(pathToFileURL(currentDist).href) }];
if (baselineDist) {
  builds.push({
    name: 'baseline',
    dist: baselineDist,
    api: await import(pathToFileURL(path.resolve(baselineDist)).href),
  });
}

const fixture = (name) => path.join(root, 'test', 'fixtures', name);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const percentile = (values, p) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))];
};
const round2 = (n) => Number(n.toFixed(2));

// V8's collections, to tell a block the call's own code made from a pause of
// the collector (which the call's garbage may have triggered, or not).
const gcPauses = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) gcPauses.push([entry.startTime, entry.duration]);
}).observe({ entryTypes: ['gc'] });
/** The longest collector pause that overlapped [from, to] (performance.now() times), or 0. */
function longestGcPause(from, to) {
  let longest = 0;
  for (const [start, duration] of gcPauses)
    if (start < to && start + duration > from) longest = Math.max(longest, duration);
  return longest;
}

/** Starts a process in its own group and waits for a line starting with `prefix`. */
function start(command, args, prefix = 'locked', timeoutMs = 180_000) {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'], detached: true });
  return new Promise((resolve, reject) => {
    let buffered = '';
    const timer = setTimeout(() => reject(new Error(`${command}: no "${prefix}" line`)), timeoutMs);
    child.stdout.on('data', (chunk) => {
      buffered += chunk;
      if (buffered.split('\n').some((line) => line.startsWith(prefix))) {
        clearTimeout(timer);
        resolve(child);
      }
    });
    child.once('exit', (code) => reject(new Error(`${command} exited (${code})`)));
  });
}

function stop(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // gone
  }
}

/** Runs a peer to completion and returns its last stdout line as JSON. */
function runPeer(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [path.join(benchDir, 'inspection-peers.mjs'), ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => {
      out += chunk;
    });
    child.once('exit', (code) => {
      try {
        resolve(JSON.parse(out.trim().split('\n').pop()));
      } catch {
        reject(new Error(`peer ${args[0]} exited (${code}): ${out}`));
      }
    });
  });
}

function recordless(kind, file) {
  fs.writeFileSync(file, 'not a record\n');
  if (kind === 'flock') return start('flock', ['-x', file, 'sh', '-c', 'echo locked; exec sleep 3600']);
  const python = [
    'import fcntl, os, struct, sys',
    'fd = os.open(sys.argv[1], os.O_RDWR)',
    "fcntl.fcntl(fd, getattr(fcntl, 'F_OFD_SETLK', 37), struct.pack('hhqqi', fcntl.F_WRLCK, 0, 0, 0, 0))",
    "print('locked', flush=True)",
    'sys.stdin.read()',
  ].join('\n');
  return start('python3', ['-c', python, file]);
}

/** A. Loop blocks and latencies, every build side by side. */
async function loopBlocks(kind, dir) {
  log(`A. ${LOCKS} ${kind} locks held by another process …`);
  const busy = await start(process.execPath, [fixture('many-locks.mjs'), path.join(dir, 'busy'), String(LOCKS), kind]);
  const sessions = path.join(dir, 'sessions');
  fs.mkdirSync(sessions);
  const target = path.join(sessions, 'target.jsonl.lock');
  const peerFile = path.join(sessions, 'peer.jsonl.lock');
  const orphan = path.join(sessions, 'orphan.lock');
  const holder = await start(process.execPath, [
    fixture('holder.mjs'),
    target,
    JSON.stringify({ kind, owner: 'bench', removeOnRelease: false }),
  ]);
  const peer = await recordless(kind, peerFile);
  const peerName = kind === 'flock' ? 'flock(1)' : 'Python OFD';
  const operations = [
    ['inspect()', (api) => api.inspect(target)],
    ['scan() of 3 files', (api) => api.scan(sessions)],
    // The orphan it removes is written back before each call, outside the measured window.
    [
      'sweep() of 3 files',
      (api) => api.sweep(sessions),
      () => fs.writeFileSync(orphan, JSON.stringify({ pid: 4_194_304 + 9 })),
    ],
    ['lock() timeout, kernel-lock holder', (api) => api.lock(target, { kind, timeout: 10 }).catch(() => {})],
    [`lock() timeout, ${peerName} holder`, (api) => api.lock(peerFile, { kind, timeout: 10 }).catch(() => {})],
  ];
  const monitor = spin ? spinMonitor() : loopMonitor();
  const rows = [];
  try {
    for (const [name, run, prepare = () => {}] of operations) {
      const results = builds.map((build) => ({ build: build.name, blocks: [], cpus: [], gcs: [], latencies: [] }));
      for (const build of builds) {
        prepare();
        await run(build.api); // warm up
      }
      for (let round = 0; round < ROUNDS; round++) {
        // A B, then B A: a call runs faster right after the same call of another build (warm caches), so
        // neither build may always go second.
        const order = [...builds.entries()];
        if (round % 2 === 1) order.reverse();
        for (const [i, build] of order) {
          // Each call starts on a collected heap: the garbage of the call before
          // (another build's, say) must not be collected during this one.
          prepare();
          globalThis.gc?.();
          await sleep(2);
          monitor.reset();
          const started = performance.now();
          await run(build.api);
          const ended = performance.now();
          results[i].latencies.push(ended - started);
          // Entries arrive a turn after the collection that made them.
          await new Promise((resolve) => setImmediate(resolve));
          results[i].gcs.push(longestGcPause(started, ended));
          gcPauses.length = 0;
          const reading = monitor.read();
          results[i].blocks.push(reading.maxBlockMs);
          results[i].cpus.push(reading.maxCpuMs);
        }
      }
      // The noise floor: the longest iteration of an idle loop over a window as long as the
      // current build's typical call (a longer window catches more of the machine's own stalls).
      const window = percentile(results[0].latencies, 0.5);
      const idle = { build: 'idle loop, same duration', blocks: [], cpus: [], gcs: [], latencies: [window] };
      for (let round = 0; round < ROUNDS; round++) {
        monitor.reset();
        const started = performance.now();
        await sleep(window);
        const ended = performance.now();
        await new Promise((resolve) => setImmediate(resolve));
        idle.gcs.push(longestGcPause(started, ended));
        gcPauses.length = 0;
        const reading = monitor.read();
        idle.blocks.push(reading.maxBlockMs);
        idle.cpus.push(reading.maxCpuMs);
      }
      for (const r of [...results, idle]) {
        rows.push({
          kind,
          operation: name,
          build: r.build,
          blockP50: round2(percentile(r.blocks, 0.5)),
          blockP90: round2(percentile(r.blocks, 0.9)),
          blockMax: round2(Math.max(...r.blocks)),
          cpuP50: round2(percentile(r.cpus, 0.5)),
          cpuP90: round2(percentile(r.cpus, 0.9)),
          cpuMax: round2(Math.max(...r.cpus)),
          gcMax: round2(Math.max(...r.gcs)),
          latencyP50: round2(percentile(r.latencies, 0.5)),
        });
      }
      log(
        `  ${name}: ${rows
          .slice(-builds.length - 1)
          .map((r) => `${r.build} block p50 ${r.blockP50} ms, CPU max ${r.cpuMax} ms`)
          .join(', ')}`,
      );
    }
  } finally {
    monitor.stop();
    stop(peer);
    stop(holder);
    stop(busy);
  }
  return rows;
}

/** B. Another process's lock cycles while one process loops over each scenario. */
async function systemCost(dir) {
  log(`B. lock cycles of another process, ${LOCKS} flock locks on the host …`);
  const busy = await start(process.execPath, [
    fixture('many-locks.mjs'),
    path.join(dir, 'busy-cost'),
    String(LOCKS),
    'flock',
  ]);
  const target = path.join(dir, 'cost-target.lock');
  const holder = await start(process.execPath, [fixture('holder.mjs'), target, JSON.stringify({ owner: 'bench' })]);
  const cycleFile = path.join(dir, 'cycles.lock');
  const scenarios = [
    ['nothing else', null],
    ['a loop reading /proc/locks (synchronously, whole)', ['read-proc-locks', String(COST_MS)]],
    ...builds.map((b) => [
      `a loop of lock() timeouts, kernel-lock holder (${b.name})`,
      ['timeouts', b.dist, target, String(COST_MS)],
    ]),
    ...builds.map((b) => [`a loop of inspect() (${b.name})`, ['inspect', b.dist, target, String(COST_MS)]]),
  ];
  const rows = [];
  try {
    for (const [name, peerArgs] of scenarios) {
      const other = peerArgs === null ? Promise.resolve(null) : runPeer(peerArgs);
      await sleep(100);
      const cycles = await runPeer(['cycles', currentDist, cycleFile, String(COST_MS - 300)]);
      const loop = await other;
      rows.push({ scenario: name, ...cycles, otherIterations: loop?.iterations ?? null });
      log(`  ${name}: p50 ${cycles.p50} µs, p99.9 ${cycles.p999} µs`);
    }
  } finally {
    stop(holder);
    stop(busy);
  }
  return rows;
}

function markdown(run) {
  const lines = [
    '# Inspection on a busy host',
    '',
    `${run.startedAt}, ${run.machine}, Node ${process.versions.node}, load average ${run.loadStart.join(' ')} → ${run.loadEnd.join(' ')}; ${LOCKS} locks held by another process; ${ROUNDS} rounds per cell.`,
    '',
    '## A. Longest event-loop block during one call',
    '',
    `Per round: the longest block of the event loop while the call ran (${run.monitor}), minus time spent waiting for a CPU; with the 1 ms timer this is exact only to about a millisecond (an idle loop's ticks come up to ~2 ms apart). "Loop CPU": the most CPU time the loop's thread used between two samples, exact to the microsecond (schedstat), counting neither the wait for a tick nor waits for a CPU (several short callbacks between two ticks add up). "GC max": the longest pause of V8's collector during any of the calls. Latency: the call itself. "idle loop, same duration": the same measures over an idle loop, for windows as long as the current build's typical call.`,
    '',
    '| locks | operation | build | block p50 (ms) | block p90 (ms) | block max (ms) | loop CPU p50 (ms) | loop CPU p90 (ms) | loop CPU max (ms) | GC max (ms) | latency p50 (ms) |',
    '|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|',
    ...run.loop.map(
      (r) =>
        `| ${r.kind} | ${r.operation} | ${r.build} | ${r.blockP50} | ${r.blockP90} | ${r.blockMax} | ${r.cpuP50} | ${r.cpuP90} | ${r.cpuMax} | ${r.gcMax} | ${r.latencyP50} |`,
    ),
    '',
    '## B. What another process pays: its lock cycles (µs) while one process loops',
    '',
    '| the looping process | cycles | p50 | p99 | p99.9 | max | p99.9 ÷ alone | loop iterations |',
    '|---|---:|---:|---:|---:|---:|---:|---:|',
    ...run.cost.map(
      (r) =>
        `| ${r.scenario} | ${r.cycles} | ${r.p50} | ${r.p99} | ${r.p999} | ${r.max} | ${(r.p999 / run.cost[0].p999).toFixed(1)}× | ${r.otherIterations ?? '-'} |`,
    ),
    '',
  ];
  return lines.join('\n');
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'kernel-lock-bench-inspection-'));
const run = {
  startedAt: new Date().toISOString(),
  machine: `${os.cpus().length} × ${os.cpus()[0]?.model?.trim() ?? 'CPU'}, Linux ${os.release()}`,
  builds: builds.map((b) => ({ name: b.name, dist: path.relative(root, b.dist) || b.dist })),
  monitor: spin ? 'setImmediate chain, every loop iteration' : '1 ms timer, gaps minus the 1 ms',
  gcBetweenCalls: typeof globalThis.gc === 'function',
  loadStart: os.loadavg().map(round2),
  loop: [],
  cost: [],
};
try {
  for (const kind of ['flock', 'ofd']) {
    const kindDir = path.join(dir, kind);
    fs.mkdirSync(kindDir);
    run.loop.push(...(await loopBlocks(kind, kindDir)));
  }
  run.cost = await systemCost(dir);
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
run.loadEnd = os.loadavg().map(round2);
const report = markdown(run);
fs.writeFileSync(path.join(benchDir, 'inspection-results.json'), `${JSON.stringify(run, null, 2)}\n`);
fs.writeFileSync(path.join(benchDir, 'inspection-results.md'), `${report}\n`);
process.stdout.write(`${report}\n`);
process.exit(0);
