#!/usr/bin/env node
// `npm run bench:lease` (about a minute) or `npm run bench:lease -- --quick`.
// Measures the fenced lease (src/lease/) side by side with a plain ofd
// lock() in the same run, and writes bench/results.lease.{json,md}:
//   1. death to successor: SIGKILL of the holder -> the waiter holds it;
//   2. takeover: how late after the holder's takeoverAfter the waiter takes
//      it over, and when the superseded holder's signal fires;
//   3. uncontended acquire + release, on the bench directory and on tmpfs
//      (a lease writes its token durably: fdatasync);
//   4. the fenced write, writeSync and assertCurrent per call.
// Cross-process times use CLOCK_MONOTONIC (process.hrtime.bigint()).
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fmt, summarize } from './stats.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(benchDir, '..');
const quick = process.argv.includes('--quick');
const CONFIG = quick
  ? { deathRounds: 8, takeoverRounds: 8, takeoverAfterMs: 100, cycles: { disk: 60, tmpfs: 300 }, calls: 3000 }
  : { deathRounds: 30, takeoverRounds: 30, takeoverAfterMs: 100, cycles: { disk: 300, tmpfs: 2000 }, calls: 20000 };
const log = (message) => process.stderr.write(`[bench:lease ${(performance.now() / 1000).toFixed(1)} s] ${message}\n`);
const child = path.join(benchDir, 'lease-child.mjs');
const now = () => process.hrtime.bigint();
const ms = (ns) => Number(ns) / 1e6;

function newestMtime(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) newest = Math.max(newest, fs.statSync(path.join(entry.parentPath, entry.name)).mtimeMs);
  }
  return newest;
}
const dist = path.join(root, 'dist', 'index.cjs');
if (!fs.existsSync(dist) || newestMtime(path.join(root, 'src')) > fs.statSync(dist).mtimeMs) {
  log('dist/ is older than src/: building with tsup');
  if (spawnSync('npx', ['tsup'], { cwd: root, stdio: 'ignore' }).status !== 0) throw new Error('tsup failed');
}
const { lease, lock } = await import('../dist/index.js');

/** A child process and its stdout lines, awaited by prefix. */
function start(args) {
  const proc = spawn(process.execPath, [child, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = [];
  const waiters = [];
  let buffered = '';
  proc.stdout.on('data', (chunk) => {
    buffered += chunk.toString();
    const parts = buffered.split('\n');
    buffered = parts.pop();
    for (const line of parts) {
      lines.push(line);
      for (const w of waiters.splice(0)) w();
    }
  });
  const next = (prefix) =>
    new Promise((resolve, reject) => {
      const look = () => {
        const found = lines.find((l) => l.startsWith(prefix));
        if (found !== undefined) return resolve(found.split(' '));
        if (proc.exitCode !== null || proc.signalCode !== null) return reject(new Error(`child gone before ${prefix}`));
        waiters.push(look);
      };
      look();
    });
  proc.on('exit', () => {
    for (const w of waiters.splice(0)) w();
  });
  return { proc, next };
}

const sleep = (t) => new Promise((resolve) => setTimeout(resolve, t));

/** Resolves once the process has exited (at once if it already has). */
function exited(proc) {
  return new Promise((resolve) => {
    if (proc.exitCode !== null || proc.signalCode !== null) resolve();
    else proc.once('exit', resolve);
  });
}

async function deathToSuccessor(dir, kind, rounds) {
  const samples = [];
  for (let i = 0; i < rounds; i++) {
    const file = path.join(dir, `death-${kind}.lock`);
    const holder = start(['hold', file, kind, 'inf']);
    await holder.next('held');
    const waiter = start(['wait', file, kind, 'inf']);
    await waiter.next('ready');
    waiter.proc.stdin.write('go\n');
    await sleep(30); // asleep in the kernel on the holder
    const killed = now();
    holder.proc.kill('SIGKILL');
    const [, granted] = await waiter.next('granted');
    samples.push(ms(BigInt(granted) - killed));
    await exited(waiter.proc);
  }
  return summarize(samples);
}

async function takeover(dir, rounds, afterMs) {
  const late = [];
  const notice = [];
  for (let i = 0; i < rounds; i++) {
    const file = path.join(dir, 'takeover.lock');
    const waiter = start(['wait', file, 'lease', 'inf']);
    await waiter.next('ready');
    const holder = start(['hold', file, 'lease', String(afterMs)]);
    const [, , heldAt] = await holder.next('held');
    waiter.proc.stdin.write('go\n');
    const [, granted, , grantedAt] = await waiter.next('granted');
    const [, aborted] = await holder.next('aborted');
    // Both grant times come from the token slot (one wall clock, whole ms).
    late.push(Number(grantedAt) - Number(heldAt) - afterMs);
    notice.push(ms(BigInt(aborted) - BigInt(granted)));
    holder.proc.kill('SIGKILL');
    await exited(waiter.proc);
  }
  return { lateness: summarize(late), notice: summarize(notice) };
}

async function cycles(dir, kind, count) {
  const file = path.join(dir, `cycle-${kind}.lock`);
  const once = kind === 'lease' ? () => lease(file) : () => lock(file, { kind: 'ofd', removeOnRelease: false });
  for (let i = 0; i < Math.min(20, count); i++) await (await once()).release();
  const samples = [];
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    const held = await once();
    await held.release();
    samples.push((performance.now() - t) * 1000);
  }
  return summarize(samples);
}

async function perCall(dir, count) {
  const held = await lease(path.join(dir, 'calls.lock'));
  const time = async (fn) => {
    for (let i = 0; i < 200; i++) await fn();
    const t = performance.now();
    for (let i = 0; i < count; i++) await fn();
    return ((performance.now() - t) * 1000) / count;
  };
  const result = {
    baselineAwaitUs: await time(() => Promise.resolve()),
    writeUs: await time(() => held.write(() => {})),
    writeSyncUs: await time(() => held.writeSync(() => {})),
    assertCurrentUs: await time(() => held.assertCurrent()),
  };
  await held.release();
  return result;
}

function fsType(dir) {
  const run = spawnSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', dir], { encoding: 'utf8' });
  return run.status === 0 ? run.stdout.trim() : 'unknown';
}

const row = (name, s, unit) =>
  `| ${name} | ${fmt(s.p50)} ${unit} | ${fmt(s.p90)} ${unit} | ${fmt(s.max)} ${unit} | ${s.n} |`;

async function main() {
  const disk = fs.mkdtempSync(path.join(os.tmpdir(), 'kl-bench-lease-'));
  const tmpfs = fs.existsSync('/dev/shm') ? fs.mkdtempSync('/dev/shm/kl-bench-lease-') : null;
  const run = {
    quick,
    startedAt: new Date().toISOString(),
    machine: {
      cpus: os.cpus().length,
      kernel: os.release(),
      node: process.versions.node,
      diskFs: fsType(disk),
      loadStart: os.loadavg().map((v) => Number(v.toFixed(2))),
    },
    config: CONFIG,
  };
  try {
    log('1. death to successor …');
    run.deathLease = await deathToSuccessor(disk, 'lease', CONFIG.deathRounds);
    run.deathLock = await deathToSuccessor(disk, 'lock', CONFIG.deathRounds);
    log('2. takeover …');
    Object.assign(run, await takeover(disk, CONFIG.takeoverRounds, CONFIG.takeoverAfterMs));
    log('3. uncontended cycles …');
    run.cycleLeaseDisk = await cycles(disk, 'lease', CONFIG.cycles.disk);
    run.cycleLockDisk = await cycles(disk, 'lock', CONFIG.cycles.disk);
    if (tmpfs !== null) {
      run.cycleLeaseTmpfs = await cycles(tmpfs, 'lease', CONFIG.cycles.tmpfs);
      run.cycleLockTmpfs = await cycles(tmpfs, 'lock', CONFIG.cycles.tmpfs);
    }
    log('4. per call …');
    run.calls = await perCall(tmpfs ?? disk, CONFIG.calls);
  } finally {
    fs.rmSync(disk, { recursive: true, force: true });
    if (tmpfs !== null) fs.rmSync(tmpfs, { recursive: true, force: true });
  }
  run.machine.loadEnd = os.loadavg().map((v) => Number(v.toFixed(2)));
  const ratio = (a, b) => (a / b).toFixed(2);
  const md = [
    `# Lease bench (${quick ? 'quick' : 'full'} run, ${run.startedAt})`,
    '',
    `${run.machine.cpus} CPUs, Linux ${run.machine.kernel}, Node ${run.machine.node}; bench directory on ${run.machine.diskFs}; ` +
      `load average ${run.machine.loadStart.join(' ')} at start, ${run.machine.loadEnd.join(' ')} at end.`,
    '',
    '## 1. Holder death to successor',
    '',
    'SIGKILL of the holder (sent by the bench) until the waiter, asleep in the kernel, holds it.',
    '',
    '| | p50 | p90 | max | n |',
    '|---|---|---|---|---|',
    row('lease (waiter on the liveness byte)', run.deathLease, 'ms'),
    row('plain `lock()`, kind ofd', run.deathLock, 'ms'),
    '',
    `Ratio lease / lock at p50: ${ratio(run.deathLease.p50, run.deathLock.p50)}. The holder's takeoverAfter plays no part: it was Infinity.`,
    '',
    '## 2. Takeover of a live holder',
    '',
    `Holder granted with takeoverAfter ${CONFIG.takeoverAfterMs} ms; a waiter starts at once. Lateness: the ` +
      "successor's grant minus (the holder's grant + takeoverAfter), both as written in the token slot (one wall " +
      "clock, whole ms; never negative: a takeover never comes early). Notice: the superseded holder's signal firing (inotify on " +
      "the token slot, in another process) minus the successor's lease() resolving; negative when the signal fired " +
      'first (the slot is written, and noticed, before lease() resolves).',
    '',
    '| | p50 | p90 | max | n |',
    '|---|---|---|---|---|',
    row('takeover lateness', run.lateness, 'ms'),
    row('supersession notice', run.notice, 'ms'),
    '',
    '## 3. Uncontended acquire + release',
    '',
    '| | p50 | p90 | max | n |',
    '|---|---|---|---|---|',
    row(`lease, ${run.machine.diskFs}`, run.cycleLeaseDisk, 'µs'),
    row(`plain lock() ofd, ${run.machine.diskFs}`, run.cycleLockDisk, 'µs'),
    ...(run.cycleLeaseTmpfs
      ? [row('lease, tmpfs', run.cycleLeaseTmpfs, 'µs'), row('plain lock() ofd, tmpfs', run.cycleLockTmpfs, 'µs')]
      : []),
    '',
    `Ratio lease / lock at p50: ${ratio(run.cycleLeaseDisk.p50, run.cycleLockDisk.p50)} on ${run.machine.diskFs} ` +
      '(the lease fdatasyncs its token before granting)' +
      (run.cycleLeaseTmpfs ? `, ${ratio(run.cycleLeaseTmpfs.p50, run.cycleLockTmpfs.p50)} on tmpfs.` : '.'),
    '',
    '## 4. Per call, lease held, uncontended (mean)',
    '',
    '| call | µs |',
    '|---|---|',
    `| \`await Promise.resolve()\` (baseline) | ${fmt(run.calls.baselineAwaitUs)} |`,
    `| \`await lease.write(() => {})\` | ${fmt(run.calls.writeUs)} |`,
    `| \`lease.writeSync(() => {})\` | ${fmt(run.calls.writeSyncUs)} |`,
    `| \`lease.assertCurrent()\` | ${fmt(run.calls.assertCurrentUs)} |`,
    '',
  ].join('\n');
  fs.writeFileSync(path.join(benchDir, 'results.lease.json'), `${JSON.stringify(run, null, 2)}\n`);
  fs.writeFileSync(path.join(benchDir, 'results.lease.md'), md);
  process.stdout.write(md);
  log('done: bench/results.lease.json, bench/results.lease.md');
}

await main();
process.exit(0);
