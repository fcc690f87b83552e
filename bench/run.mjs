#!/usr/bin/env node
// `npm run bench` (full, minutes) or `npm run bench -- --quick` (< 60 s).
// Ends with bench/inspection.mjs (bench/inspection-results.md).
// Builds what the bench needs (dist/ when stale, the C floor, the legacy
// baseline), runs the seven measurements of issue 6 with every contender in
// the same run, and writes bench/results.{json,md,svg}; the Markdown report
// also goes to stdout. `--only=id,id` restricts the contenders (development).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { floorBinary, floorContenders, Pool } from './children.mjs';
import { contenders, legacySource } from './contenders.mjs';
import {
  crashRecovery,
  handoff,
  scale,
  threadpoolHealth,
  throughput,
  uncontended,
  waitingCost,
} from './measurements.mjs';
import { ensurePeers, peers, peerVersion } from './peers.mjs';
import { markdown } from './report.mjs';
import { renderSvg } from './svg.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(benchDir, '..');
const buildDir = path.join(benchDir, '.build');
// Generated JavaScript goes where the linter does not look.
const legacyBundle = path.join(root, 'node_modules', '.cache', 'kernel-lock-bench', 'legacy-marker.mjs');
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const only = argv
  .find((arg) => arg.startsWith('--only='))
  ?.slice('--only='.length)
  .split(',');
const log = (message) => process.stderr.write(`[bench ${(performance.now() / 1000).toFixed(1)} s] ${message}\n`);

const CONFIG = quick
  ? {
      uncontended: { warmupMs: 30, rounds: 4, roundMs: 25 },
      handoff: { rounds: 1, perRound: 60, pollPerRound: 5, settleMs: 2 },
      crashRecovery: {
        rounds: 1,
        killsPerRound: 2,
        cHolderKillsPerRound: 3,
        staleKillsPerRound: 1,
        settleMs: 5,
        maxPrewarm: 40,
      },
      waitingCost: { waiters: 4, holdMs: 250, settleMs: 100, quietMs: 300, drainMs: 10_000 },
      threadpoolHealth: { waiterCounts: [0, 8, 64], samples: 20, stallMs: 200, settleMs: 50, drainMs: 10_000 },
      throughput: { processes: 4, rounds: 1, durationMs: 200 },
      scale: { locks: 500, waiters: 64, settleMs: 100, timeoutMs: 2000 },
    }
  : {
      uncontended: { warmupMs: 200, rounds: 30, roundMs: 100 },
      handoff: { rounds: 5, perRound: 200, pollPerRound: 20, settleMs: 3 },
      crashRecovery: {
        rounds: 5,
        killsPerRound: 5,
        cHolderKillsPerRound: 5,
        staleKillsPerRound: 1,
        settleMs: 5,
        maxPrewarm: 40,
      },
      waitingCost: { waiters: 16, holdMs: 5000, settleMs: 500, quietMs: 3000, drainMs: 30_000 },
      threadpoolHealth: {
        waiterCounts: [0, 8, 64],
        samples: 200,
        stallMs: 2000,
        settleMs: 200,
        drainMs: 30_000,
      },
      throughput: { processes: 4, rounds: 3, durationMs: 1000 },
      scale: { locks: 10_000, waiters: 256, settleMs: 1000, timeoutMs: 30_000 },
    };

function newestMtime(dir) {
  let newest = 0;
  for (const entry of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile())
      newest = Math.max(newest, fs.statSync(path.join(entry.parentPath ?? entry.path, entry.name)).mtimeMs);
  }
  return newest;
}

/** Builds dist/ with tsup when src/ is newer; keeps the old dist/ if the build fails. */
function ensureDist() {
  const dist = path.join(root, 'dist', 'index.js');
  const stale = !fs.existsSync(dist) || newestMtime(path.join(root, 'src')) > fs.statSync(dist).mtimeMs;
  if (!stale) return;
  log('dist/ is older than src/: building with tsup');
  const run = spawnSync('npx', ['tsup'], { cwd: root, encoding: 'utf8' });
  if (run.status !== 0) {
    if (!fs.existsSync(dist)) throw new Error(`tsup failed and there is no dist/:\n${run.stderr}`);
    log(`tsup failed; benchmarking the existing dist/:\n${run.stderr.slice(0, 2000)}`);
  }
}

function buildFloor() {
  fs.mkdirSync(buildDir, { recursive: true });
  const source = path.join(benchDir, 'floor.c');
  if (fs.existsSync(floorBinary) && fs.statSync(floorBinary).mtimeMs >= fs.statSync(source).mtimeMs) return;
  execFileSync('cc', ['-O2', '-Wall', '-o', floorBinary, source], { stdio: 'inherit' });
}

/** Bundles the real legacy baseline when it exists; contenders.mjs falls back to the stand-in. */
async function buildLegacy() {
  const source = path.join(root, 'src', 'demo', 'legacy-marker.ts');
  const out = legacyBundle;
  if (!fs.existsSync(source)) {
    fs.rmSync(out, { force: true });
    return;
  }
  const require = createRequire(import.meta.url);
  const esbuild = require('esbuild');
  await esbuild.build({
    entryPoints: [source],
    outfile: out,
    bundle: true,
    format: 'esm',
    platform: 'node',
    logLevel: 'error',
  });
}

function fsType(dir) {
  try {
    return execFileSync('findmnt', ['-n', '-o', 'FSTYPE', '-T', dir], { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown fs';
  }
}

function versionOf(name) {
  if (peers.includes(name)) return peerVersion(name);
  try {
    return JSON.parse(fs.readFileSync(path.join(root, 'node_modules', name, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

const rounded = (values) => values.map((v) => Number(v.toFixed(2)));

async function main() {
  ensureDist();
  buildFloor();
  await buildLegacy();
  const specs = [...contenders, ...floorContenders].filter(
    (spec) => !only || only.includes(spec.id) || spec.floor || spec.id === 'legacy-marker',
  );
  if (specs.some((spec) => peers.includes(spec.lib))) ensurePeers(log);
  const dir = fs.mkdtempSync(path.join(buildDir, 'run-'));
  const machine = {
    cpuModel: os.cpus()[0]?.model?.trim() ?? 'unknown CPU',
    cpus: os.cpus().length,
    memGiB: Number((os.totalmem() / 2 ** 30).toFixed(1)),
    kernel: os.release(),
    arch: process.arch,
    node: process.versions.node,
    v8: process.versions.v8,
    uvThreadpoolSize: Number(process.env.UV_THREADPOOL_SIZE ?? 4),
    fsType: fsType(dir),
    dir: path.relative(root, buildDir),
    loadStart: rounded(os.loadavg()),
  };
  const run = {
    quick,
    startedAt: new Date().toISOString(),
    machine,
    versions: Object.fromEntries(
      ['fs-ext', 'fs-native-extensions', 'os-lock', 'proper-lockfile'].map((name) => [name, versionOf(name)]),
    ),
    legacySource: await legacySource(),
    config: CONFIG,
    specs,
    measurements: {},
  };
  run.versions['kernel-lock'] = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
  const steps = [
    ['uncontended', '1. uncontended cycle', uncontended],
    ['handoff', '2. hand-off across processes', handoff],
    ['crashRecovery', '3. crash recovery', crashRecovery],
    ['waitingCost', '4. CPU while waiting', waitingCost],
    ['threadpoolHealth', '5. readFile with waiters pending', threadpoolHealth],
    ['throughput', '6. contended throughput', throughput],
    ['scale', '7. scale', scale],
  ];
  const pool = new Pool(path.join(dir, 'pool-scratch.lock'));
  try {
    for (const [key, title, measure] of steps) {
      log(`${title} …`);
      const started = performance.now();
      const { samples, ...summaries } = await measure(CONFIG[key], specs, dir, pool);
      run.measurements[key] = { ...summaries, seconds: Number(((performance.now() - started) / 1000).toFixed(1)) };
    }
  } finally {
    await pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  run.loadEnd = rounded(os.loadavg());
  run.finishedAt = new Date().toISOString();
  const report = markdown(run);
  const json = { ...run, specs: specs.map(({ load, ...rest }) => rest) };
  fs.writeFileSync(path.join(benchDir, 'results.json'), `${JSON.stringify(json, null, 2)}\n`);
  fs.writeFileSync(path.join(benchDir, 'results.md'), `${report}\n`);
  fs.writeFileSync(path.join(benchDir, 'results.svg'), renderSvg(run));
  process.stdout.write(`${report}\n`);
  log(`done: bench/results.json, bench/results.md, bench/results.svg`);
  // Inspection with 10,000 locks on the host, in a process of its own (it measures its own event loop).
  log('8. inspection on a busy host (bench/inspection.mjs) …');
  const inspection = spawnSync(
    process.execPath,
    ['--expose-gc', path.join(benchDir, 'inspection.mjs'), ...(quick ? ['--quick'] : [])],
    {
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  if (inspection.status !== 0) log(`bench/inspection.mjs failed (exit ${inspection.status})`);
}

await main();
process.exit(0);
