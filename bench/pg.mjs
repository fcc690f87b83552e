#!/usr/bin/env node
// `npm run bench:pg` (add `-- --quick` for a short run): the PostgreSQL
// engine side by side with the kernel engine, in one run, on one machine,
// with node-postgres alone (pg_advisory_lock, no owner record, no token) as
// the floor of the PostgreSQL column. Ratios are what to read; absolute
// figures move 2-3x with load here.
//
//   1. uncontended acquire + release (µs per cycle, one process)
//   2. hand-off across processes (µs: waiter's grant - holder's release)
//   3. crash recovery (ms: holder SIGKILLed -> waiter granted)
//   4. partition (ms after the holder's link is cut: holder told, waiter
//      granted), root only: network namespaces, as test/pg/hosts.test.ts
//
// Uses the cluster in $KERNEL_LOCK_PG_URL when set, else starts a private
// one (scripts/pg-cluster.sh). Writes bench/pg-results.{json,md}.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LineChild, summary } from './pg-children.mjs';
import { partitions } from './pg-partition.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(benchDir, '..');
const quick = process.argv.includes('--quick');
const log = (m) => process.stderr.write(`[bench:pg ${(performance.now() / 1000).toFixed(1)} s] ${m}\n`);
const CONFIG = quick
  ? { uncontendedMs: 300, rounds: 2, handoffs: 40, kills: 5, partitionRepeats: 1, deadPeerMs: [3000] }
  : { uncontendedMs: 1500, rounds: 4, handoffs: 100, kills: 15, partitionRepeats: 3, deadPeerMs: [3000, 10000] };
const worker = path.join(benchDir, 'pg-worker.mjs');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let clusterDir;
let url = process.env.KERNEL_LOCK_PG_URL;
if (!url) {
  clusterDir = `/tmp/klpg-bench-${process.pid}`;
  const envFile = execFileSync(`${root}/scripts/pg-cluster.sh`, ['start', clusterDir], { encoding: 'utf8' }).trim();
  url = /KERNEL_LOCK_PG_URL='([^']+)'/.exec(readFileSync(envFile, 'utf8'))[1];
}
mkdirSync(path.join(benchDir, '.build'), { recursive: true });
const lockDir = mkdtempSync(path.join(benchDir, '.build', 'pg-'));
const lockFile = path.join(lockDir, 'bench.lock');
const engines = [
  { id: 'kernel', label: 'kernel-lock (flock)', args: ['kernel', lockFile] },
  { id: 'pg', label: 'kernel-lock/pg (TCP loopback)', args: ['pg', url] },
  { id: 'raw', label: 'node-postgres alone (floor)', args: ['raw', url] },
];

async function start(engine, name = 'bench') {
  const child = new LineChild([worker, ...engine.args, name]);
  await child.prefix('ready');
  return child;
}

async function uncontended() {
  const samples = Object.fromEntries(engines.map((e) => [e.id, []]));
  for (let round = 0; round < CONFIG.rounds; round++) {
    const order = round % 2 === 0 ? engines : [...engines].reverse();
    for (const engine of order) {
      const child = await start(engine, `u${round}`);
      child.send(`uncontended ${CONFIG.uncontendedMs}`);
      samples[engine.id].push(...JSON.parse((await child.prefix('cycles ')).slice(7)));
      child.send('exit');
      await child.kill('SIGTERM');
    }
  }
  return Object.fromEntries(Object.entries(samples).map(([id, s]) => [id, summary(s)]));
}

async function handoff() {
  const result = {};
  for (const engine of engines) {
    const a = await start(engine, 'handoff');
    const b = await start(engine, 'handoff');
    const samples = [];
    let [holder, waiter] = [a, b];
    holder.send('lock');
    await holder.prefix('granted');
    for (let i = 0; i < CONFIG.handoffs; i++) {
      waiter.send('lock');
      await waiter.prefix('waiting');
      await sleep(5); // the wait reaches the kernel, or the server
      holder.send('release');
      const released = BigInt((await holder.prefix('released ')).split(' ')[1]);
      const granted = BigInt((await waiter.prefix('granted ')).split(' ')[1]);
      samples.push(Number(granted - released) / 1000);
      [holder, waiter] = [waiter, holder];
    }
    holder.send('release');
    await holder.prefix('released');
    for (const c of [a, b]) await c.kill();
    result[engine.id] = summary(samples);
    log(`hand-off ${engine.id}: p50 ${result[engine.id].p50.toFixed(0)} µs`);
  }
  return result;
}

async function crashRecovery() {
  const result = {};
  for (const engine of engines) {
    const samples = [];
    const waiter = await start(engine, 'crash');
    for (let i = 0; i < CONFIG.kills; i++) {
      const holder = await start(engine, 'crash');
      holder.send('lock');
      await holder.prefix('granted');
      waiter.send('lock');
      await waiter.prefix('waiting');
      await sleep(20);
      const killed = process.hrtime.bigint();
      holder.proc.kill('SIGKILL');
      const granted = BigInt((await waiter.prefix('granted ')).split(' ')[1]);
      samples.push(Number(granted - killed) / 1e6);
      waiter.send('release');
      await waiter.prefix('released');
      await holder.kill();
    }
    await waiter.kill();
    result[engine.id] = summary(samples);
    log(`crash recovery ${engine.id}: p50 ${result[engine.id].p50.toFixed(1)} ms`);
  }
  return result;
}

const fmt = (v, digits = 0) => (v === undefined ? '–' : v.toFixed(digits));
function table(title, unit, data, digits) {
  const k = data.kernel.p50;
  const rows = engines.map(
    (e) =>
      `| ${e.label} | ${fmt(data[e.id].p50, digits)} | ${fmt(data[e.id].p90, digits)} | ${fmt(data[e.id].p99, digits)} | ${(data[e.id].p50 / k).toFixed(1)}× |`,
  );
  return [
    `### ${title} (${unit})`,
    '',
    '| engine | p50 | p90 | p99 | p50 ÷ kernel |',
    '| --- | ---: | ---: | ---: | ---: |',
    ...rows,
    '',
  ].join('\n');
}

try {
  log(`uncontended (${CONFIG.rounds} rounds × ${CONFIG.uncontendedMs} ms per engine)`);
  const u = await uncontended();
  log(`hand-off (${CONFIG.handoffs} per engine)`);
  const h = await handoff();
  log(`crash recovery (${CONFIG.kills} kills per engine)`);
  const c = await crashRecovery();
  let p = null;
  if (process.getuid?.() === 0) {
    log('partitions (network namespaces)');
    p = await partitions({ root, deadPeerMsList: CONFIG.deadPeerMs, repeats: CONFIG.partitionRepeats, log });
  } else {
    log('partitions skipped: they need root (network namespaces)');
  }
  const load = os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' ');
  const version = execFileSync(
    'bash',
    ['-c', `"$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)/postgres" --version`],
    {
      encoding: 'utf8',
    },
  ).trim();
  const md = [
    `Run: ${new Date().toISOString()}, ${os.cpus().length} × ${os.cpus()[0]?.model}, Node ${process.version}, ${version}, load ${load}${quick ? ', --quick' : ''}.`,
    '',
    table('Uncontended acquire + release', 'µs per cycle', u, 0),
    table('Hand-off across processes', 'µs, release → waiter granted', h, 0),
    table('Crash recovery', 'ms, holder SIGKILLed → waiter granted', c, 1),
  ];
  if (p !== null) {
    md.push(
      "### Partition: the holder's link is cut (ms after the cut)",
      '',
      '| deadPeerMs | holder told (signal aborts) | waiter granted |',
      '| ---: | ---: | ---: |',
    );
    for (const r of p)
      md.push(
        `| ${r.deadPeerMs} | ${r.holderToldMs.toFixed(0)} | ${r.granted === 'granted' ? r.waiterGrantedMs.toFixed(0) : r.granted} |`,
      );
    md.push('');
  }
  const report = md.join('\n');
  process.stdout.write(`${report}\n`);
  writeFileSync(path.join(benchDir, 'pg-results.md'), `${report}\n`);
  writeFileSync(
    path.join(benchDir, 'pg-results.json'),
    `${JSON.stringify({ config: CONFIG, uncontended: u, handoff: h, crashRecovery: c, partitions: p }, null, 2)}\n`,
  );
} finally {
  rmSync(lockDir, { recursive: true, force: true });
  if (clusterDir) execFileSync(`${root}/scripts/pg-cluster.sh`, ['stop', clusterDir]);
}
