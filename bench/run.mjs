#!/usr/bin/env node
// `npm run bench` (full, minutes) or `npm run bench -- --quick` (about a minute).
// Builds what the bench needs (dist/ when stale, the C floor, the legacy
// baseline), runs the sections listed in bench/sections.mjs with every
// contender in the same run, and writes bench/results.{json,md,svg}; the
// Markdown report also goes to stdout (part 10 is bench/inspection.mjs, its
// own report in bench/inspection-results.md). `--only=id,id` restricts the
// contenders (development); `--sections=key,key` the sections.
// KERNEL_LOCK_BENCH_BASELINE=<dist/index.js> adds another build's kernel-lock
// contenders ("before", named by KERNEL_LOCK_BENCH_BASELINE_NAME).
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFloor, floorContenders, Pool } from './children.mjs';
import { baselineDist, baselineName, contenders, legacySource } from './contenders.mjs';
import { ensurePeers, peers, peerVersion } from './peers.mjs';
import { markdown } from './report.mjs';
import { sections, specsForSection } from './sections.mjs';
import { renderSvg } from './svg.mjs';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(benchDir, '..');
const buildDir = path.join(benchDir, '.build');
// Generated JavaScript goes where the linter does not look.
const legacyBundle = path.join(root, 'node_modules', '.cache', 'kernel-lock-bench', 'legacy-marker.mjs');
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const listArg = (name) =>
  argv
    .find((arg) => arg.startsWith(`--${name}=`))
    ?.slice(name.length + 3)
    .split(',');
const only = listArg('only');
const onlySections = listArg('sections');
const log = (message) => process.stderr.write(`[bench ${(performance.now() / 1000).toFixed(1)} s] ${message}\n`);

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

/** Runs a section that is a script of its own; returns what its results file says. */
function runScript(section, cfg) {
  const script = path.join(benchDir, section.script);
  if (!fs.existsSync(script)) return { na: `bench/${section.script} is not in this build` };
  const child = spawnSync(process.execPath, [...(section.nodeArgs ?? []), script, ...cfg.args], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  if (child.status !== 0) return { na: `bench/${section.script} failed (exit ${child.status})` };
  try {
    return { results: JSON.parse(fs.readFileSync(path.join(benchDir, section.resultsFile), 'utf8')) };
  } catch (error) {
    return { na: `bench/${section.resultsFile} unreadable: ${error.message}` };
  }
}

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
  const chosen = sections.filter((section) => !onlySections || onlySections.includes(section.key));
  const run = {
    quick,
    startedAt: new Date().toISOString(),
    machine,
    versions: Object.fromEntries(
      ['fs-ext', 'fs-native-extensions', 'os-lock', 'proper-lockfile'].map((name) => [name, versionOf(name)]),
    ),
    legacySource: await legacySource(),
    baseline: baselineDist ? { dist: baselineDist, name: baselineName } : null,
    config: Object.fromEntries(chosen.map((section) => [section.key, quick ? section.quick : section.full])),
    specs,
    measurements: {},
  };
  run.versions['kernel-lock'] = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).version;
  const pool = new Pool(path.join(dir, 'pool-scratch.lock'));
  try {
    for (const section of chosen) {
      log(`${section.title} …`);
      const cfg = run.config[section.key];
      const started = performance.now();
      const loadStart = rounded(os.loadavg());
      let result;
      if (section.script) {
        result = runScript(section, cfg);
      } else {
        const { samples, ...summaries } = await section.measure(cfg, specsForSection(section, specs, quick), dir, pool);
        result = summaries;
      }
      run.measurements[section.key] = {
        ...result,
        loadStart,
        loadEnd: rounded(os.loadavg()),
        seconds: Number(((performance.now() - started) / 1000).toFixed(1)),
      };
    }
  } finally {
    await pool.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  run.loadEnd = rounded(os.loadavg());
  run.finishedAt = new Date().toISOString();
  const report = markdown(run);
  const json = { ...run, specs: specs.map(({ load, loadCycle, ...rest }) => rest) };
  fs.writeFileSync(path.join(benchDir, 'results.json'), `${JSON.stringify(json, null, 2)}\n`);
  fs.writeFileSync(path.join(benchDir, 'results.md'), `${report}\n`);
  fs.writeFileSync(path.join(benchDir, 'results.svg'), renderSvg(run));
  process.stdout.write(`${report}\n`);
  log(`done: bench/results.json, bench/results.md, bench/results.svg`);
}

await main();
process.exit(0);
