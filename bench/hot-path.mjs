#!/usr/bin/env node
// Where the uncontended cycle's time goes: the same lock cycle measured layer
// by layer, from the C floor up to `await lock()` + `await release()`, in
// interleaved rounds. Each line's difference to the one above is what that
// layer costs. The second line is the same C program with one idle thread:
// a Node process always has threads, and the kernel's descriptor lookups and
// glibc's cancellation points cost more in any multi-threaded process.
// `node bench/hot-path.mjs [keep|remove] [rounds] [src dir]`.
// (Internal modules are bundled from src/, or from a modified copy given as
// the third argument to try a change, with esbuild into node_modules/.cache.)
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { importBundled } from './bundle.mjs';
import { buildFloor, floorBinary } from './children.mjs';
import { summarize } from './stats.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(benchDir, '..');
const buildDir = path.join(benchDir, '.build');
const mode = process.argv[2] === 'remove' ? 'remove' : 'keep';
const rounds = Number(process.argv[3] ?? 10);
const srcDir = path.resolve(process.argv[4] ?? path.join(root, 'src', 'lock'));
const roundMs = 50;
const removeOnRelease = mode === 'remove';

const tag = srcDir === path.join(root, 'src', 'lock') ? 'src' : path.basename(path.dirname(srcDir));
// The addon is this checkout's (root), whichever src/lock is measured.
const k = await importBundled(
  [
    `export { native, out, Flag } from '${path.join(srcDir, '..', 'native', 'binding.ts')}';`,
    `export { normalizeOptions } from '${path.join(srcDir, 'options.ts')}';`,
    `export { formatRecord } from '${path.join(srcDir, 'owner-record.ts')}';`,
    `export { attempt, recordFor } from '${path.join(srcDir, 'acquire-steps.ts')}';`,
    `export { lock, lockSync } from '${path.join(srcDir, 'acquire.ts')}';`,
  ].join('\n'),
  `hot-path-${tag}`,
);

const lockPath = path.join(buildDir, `hot-path-${mode}.lock`);
const flags = k.Flag.flock;
const releaseFlags = flags | (removeOnRelease ? k.Flag.unlink : 0);
// As lock() passes it: the record's bytes, converted once per change.
const fixedRecord = Buffer.from(k.formatRecord('flock', 'exclusive', undefined));
const opts = { kind: 'flock', removeOnRelease };
const fixedReq = k.normalizeOptions(lockPath, opts, Number.POSITIVE_INFINITY);

const layers = [
  ['C floor (same syscalls)', 'cycle'],
  ['C floor, one idle thread (as in any Node process)', 'cycle-mt'],
  [
    'native.acquire + native.release, record prebuilt',
    () => {
      const fd = k.native.acquire(lockPath, flags, 0, 0, fixedRecord); // the record Buffer, as before 2026-12-02
      k.native.release(fd, lockPath, releaseFlags, 0, 0);
    },
  ],
  [
    '+ attempt(req, recordFor(req)), as lock() does',
    () => {
      const fd = k.attempt(fixedReq, k.recordFor(fixedReq), false);
      k.native.release(fd, lockPath, releaseFlags, 0, 0);
    },
  ],
  [
    '+ normalizeOptions() per cycle',
    () => {
      const req = k.normalizeOptions(lockPath, opts, Number.POSITIVE_INFINITY);
      const fd = k.attempt(req, k.recordFor(req), false);
      k.native.release(fd, req.path, releaseFlags, 0, 0);
    },
  ],
  [
    'lockSync() + releaseSync()',
    () => {
      k.lockSync(lockPath, opts).releaseSync();
    },
  ],
  [
    'await lock() + handle.releaseSync()',
    async () => {
      (await k.lock(lockPath, opts)).releaseSync();
    },
  ],
  [
    'await lock() + await handle.release()',
    async () => {
      await (await k.lock(lockPath, opts)).release();
    },
  ],
];

async function runLayer(fn) {
  const samples = [];
  const end = performance.now() + roundMs;
  const isAsync = fn.constructor.name === 'AsyncFunction';
  while (performance.now() < end) {
    const t0 = process.hrtime.bigint();
    if (isAsync) await fn();
    else fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e3);
  }
  return samples;
}

function floorRun(mode) {
  buildFloor();
  const run = spawnSync(floorBinary, [mode, lockPath, removeOnRelease ? '1' : '0', String(roundMs)], {
    encoding: 'utf8',
  });
  return run.stdout
    .trim()
    .split(' ')
    .map((ns) => Number(ns) / 1e3);
}

const samples = layers.map(() => []);
for (let round = -1; round < rounds; round++) {
  for (let i = 0; i < layers.length; i++) {
    const layer = layers[i][1];
    const got = typeof layer === 'string' ? floorRun(layer) : await runLayer(layer);
    if (round >= 0) samples[i].push(...got); // round -1 warms up
  }
}
console.log(
  `${path.relative(root, srcDir)}: uncontended flock cycle, ${mode}-file, ${rounds}×${roundMs} ms per layer, p50 µs (Δ to the line above)`,
);
let previous = null;
for (let i = 0; i < layers.length; i++) {
  const { p50, n } = summarize(samples[i]);
  const delta = previous === null ? '' : ` (${p50 - previous >= 0 ? '+' : ''}${(p50 - previous).toFixed(2)})`;
  console.log(`${layers[i][0].padEnd(48)} ${p50.toFixed(2).padStart(7)}${delta}  n=${n}`);
  previous = p50;
}
