#!/usr/bin/env node
// The load matrix: runs each prebuilt binary for real on the systems it is
// promised to (systems.mjs), and says what happened. docs/INSTALL.md's table
// is this matrix; test/package/load.test.ts runs every cell in CI.
//
// Usage: node scripts/prebuild/load-matrix.mjs --package DIR [--cell ID] [--json]
//        node scripts/prebuild/load-matrix.mjs --provision | --list
//   DIR          a package directory: package.json, dist/ and prebuilds/ (as packed)
//   ID           one cell (default: all), e.g. linux-x64-glibc@centos7-x64/node16
//   --provision  only download and assemble every system (into the cache)
//   --list       print the cells as JSON
// Prints one line per cell (or a JSON array) and exits 1 when a cell fails.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nodeHeaders } from '../lib/node-headers.mjs';
import { muslLoader, qemuAarch64, runChrooted, SYSTEMS } from './systems.mjs';
import { TARGETS } from './targets.mjs';
import { zig } from './zig.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..', '..');

/**
 * @typedef {object} Cell
 * @property {string} id
 * @property {string} target   a TARGETS id
 * @property {string} system   a SYSTEMS id
 * @property {'library'|'binary'|'dlopen'} probe  what runs: the library's
 *   lock scenario (probe.cjs library), the binary alone (probe.cjs binary),
 *   or musl's loader through musl-harness.c
 * @property {string} runtime  what runs it, for the matrix
 * @property {string} [node]   the Node inside the system's root
 */

/** @type {Cell[]} */
export const CELLS = [
  cell('linux-x64-glibc', 'centos7-x64', 'library', 'Node 16.20.2 (official build)', '/opt/node16/node'),
  cell('linux-x64-glibc', 'debian11-x64', 'binary', "Debian's nodejs 12.22.12", '/usr/bin/node'),
  cell('linux-x64-glibc', 'debian11-x64', 'library', 'Node 16.20.2 (official build)', '/opt/node16/node'),
  cell('linux-arm64-glibc', 'centos7-arm64', 'library', 'Node 16.20.2 arm64 (official build)', '/opt/node16/node'),
  cell('linux-x64-musl', 'musl-x64', 'dlopen', 'musl-harness (dlopen RTLD_NOW)'),
  cell('linux-arm64-musl', 'musl-arm64', 'dlopen', 'musl-harness (dlopen RTLD_NOW)'),
];

function cell(target, system, probe, runtime, node) {
  const how = probe === 'dlopen' ? 'harness' : node === '/usr/bin/node' ? 'distro-node' : 'node16';
  return { id: `${target}@${system}/${how}`, target, system, probe, runtime, node };
}

/** Copies what a consumer's node_modules/kernel-lock holds into `into`. */
function installPackage(packageDir, into) {
  fs.mkdirSync(path.join(into, 'node_modules'), { recursive: true });
  for (const entry of ['package.json', 'dist', 'prebuilds']) {
    fs.cpSync(path.join(packageDir, entry), path.join(into, entry), { recursive: true });
  }
  const gypBuild = path.dirname(fs.realpathSync(path.join(root, 'node_modules', 'node-gyp-build', 'package.json')));
  fs.cpSync(gypBuild, path.join(into, 'node_modules', 'node-gyp-build'), { recursive: true });
}

function parseProbe(result) {
  const line = (result.stdout ?? '').trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line);
  } catch {
    return { error: `no result: exit ${result.status ?? result.signal}; ${result.stdout}${result.stderr}`.trim() };
  }
}

function runGlibcCell(c, system, packageDir) {
  const rootDir = system.provision();
  const inside = `/opt/kernel-lock-${process.pid}-${randomBytes(4).toString('hex')}`;
  const host = path.join(rootDir, inside);
  try {
    installPackage(packageDir, path.join(host, 'package'));
    fs.copyFileSync(path.join(here, 'probe.cjs'), path.join(host, 'probe.cjs'));
    fs.mkdirSync(path.join(host, 'scratch'));
    const target = TARGETS.find((t) => t.id === c.target);
    const args =
      c.probe === 'library'
        ? ['library', `${inside}/package`, `${inside}/scratch`]
        : ['binary', `${inside}/package/${target.file}`];
    return parseProbe(runChrooted(rootDir, system.arch, [c.node, `${inside}/probe.cjs`, ...args]));
  } finally {
    fs.rmSync(host, { recursive: true, force: true });
  }
}

// Every function node_api.h (and js_native_api.h) declares, whatever its N-API
// version, and every libuv function uv.h declares (Node exports libuv to
// addons; kernel-lock's wait hub uses one uv_async_t per environment): what
// a Node offers a binary, and all the harness stands in for.
function nodeFunctions() {
  const dir = nodeHeaders();
  const names = new Set();
  for (const header of ['js_native_api.h', 'node_api.h']) {
    const text = fs.readFileSync(path.join(dir, header), 'utf8');
    for (const match of text.matchAll(/NAPI_EXTERN[^;]*?\b((?:napi|node_api)_\w+)\s*\(/g)) names.add(match[1]);
  }
  const uv = fs.readFileSync(path.join(dir, 'uv.h'), 'utf8');
  for (const match of uv.matchAll(/UV_EXTERN[^;]*?\b(uv_\w+)\s*\(/g)) names.add(match[1]);
  return [...names].sort();
}

function buildHarness(arch, work) {
  const stubs = path.join(work, 'napi-stubs.c');
  fs.writeFileSync(
    stubs,
    `#include <stdlib.h>\n${nodeFunctions()
      .map((name) => `void ${name}(void) { abort(); }`)
      .join('\n')}\n`,
  );
  const output = path.join(work, `musl-harness-${arch}`);
  const compiler = zig();
  const triple = arch === 'x64' ? 'x86_64-linux-musl' : 'aarch64-linux-musl';
  const built = spawnSync(
    compiler.bin,
    [
      'build-exe',
      '-target',
      triple,
      '-mcpu=baseline',
      '-dynamic',
      '-rdynamic',
      '-lc',
      '-O',
      'ReleaseSafe',
      path.join(here, 'musl-harness.c'),
      stubs,
      `-femit-bin=${output}`,
    ],
    { env: compiler.env, encoding: 'utf8', cwd: work },
  );
  if (built.status !== 0) throw new Error(`building the musl harness failed:\n${built.stderr}`);
  return output;
}

function runMuslCell(c, system, packageDir) {
  const rootDir = system.provision();
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'kernel-lock-musl-'));
  try {
    const harness = buildHarness(system.arch, work);
    const binary = path.join(packageDir, TARGETS.find((t) => t.id === c.target).file);
    const loader = [muslLoader(rootDir, system.arch)];
    if (system.arch === 'arm64' && process.arch !== 'arm64') loader.unshift(qemuAarch64());
    const spawn = (args) =>
      spawnSync(loader[0], [...loader.slice(1), ...args], { encoding: 'utf8', timeout: 120_000, env: {} });
    const result = spawn([harness, binary]);
    // musl's loader run without a program names its version (on stderr).
    const musl = spawn([]).stderr.match(/Version ([\d.]+)/)?.[1] ?? null;
    return { ...parseProbe(result), musl, arch: system.arch };
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** Runs one cell against the package in `packageDir`; never throws. */
export function runCell(c, packageDir) {
  const system = SYSTEMS.find((s) => s.id === c.system);
  const started = Date.now();
  let result;
  try {
    result = c.probe === 'dlopen' ? runMuslCell(c, system, packageDir) : runGlibcCell(c, system, packageDir);
  } catch (error) {
    result = { error: error.message };
  }
  return { ...c, title: system.title, seconds: (Date.now() - started) / 1000, result, ok: passed(c, result) };
}

/** Whether a cell's result shows the binary loaded and worked. */
export function passed(c, result) {
  if (result.error) return false;
  if (c.probe === 'dlopen') return result.loaded === true && result.napi === 8 && result.init === true;
  if (c.probe === 'binary') return result.loaded === true && result.napi >= 8;
  const expected = TARGETS.find((t) => t.id === c.target).file;
  return (
    result.binary === expected &&
    JSON.stringify(result.steps) ===
      JSON.stringify(['busy while held', 'handed off after unlink', 'ofd busy while held', 'ofd free after release'])
  );
}

function describe(entry) {
  const r = entry.result;
  const libc = r.glibc ? `glibc ${r.glibc}` : r.musl ? `musl ${r.musl}` : '';
  const detail = r.error
    ? r.error.split('\n')[0]
    : [r.node, libc, r.napi && `N-API ${r.napi}`].filter(Boolean).join(', ');
  return `${entry.ok ? 'ok  ' : 'FAIL'} ${entry.id} (${entry.seconds.toFixed(1)} s): ${detail}`;
}

function provisionAll() {
  for (const system of SYSTEMS) {
    const started = Date.now();
    system.provision();
    console.log(`${system.id}: ready (${((Date.now() - started) / 1000).toFixed(1)} s) ${system.title}`);
  }
  zig();
}

function main() {
  const args = process.argv.slice(2);
  const value = (name) => args[args.indexOf(name) + 1];
  if (args.includes('--list')) return console.log(JSON.stringify(CELLS, null, 2));
  if (args.includes('--provision')) return provisionAll();
  if (!args.includes('--package')) throw new Error('usage: load-matrix.mjs --package DIR [--cell ID] [--json]');
  const packageDir = path.resolve(value('--package'));
  const cells = args.includes('--cell') ? CELLS.filter((c) => c.id === value('--cell')) : CELLS;
  if (cells.length === 0) throw new Error(`no cell ${value('--cell')}; cells: ${CELLS.map((c) => c.id).join(', ')}`);
  const results = [];
  for (const c of cells) {
    const entry = runCell(c, packageDir);
    results.push(entry);
    if (!args.includes('--json')) console.log(describe(entry));
  }
  if (args.includes('--json')) console.log(JSON.stringify(results, null, 2));
  process.exitCode = results.every((entry) => entry.ok) ? 0 : 1;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    main();
  } catch (error) {
    console.error(`load-matrix: ${error.message}`);
    process.exitCode = 2;
  }
}
