#!/usr/bin/env node
// Builds the prebuilt N-API binaries the tarball ships, from native/ and
// binding.gyp, with one toolchain (zig's clang; see scripts/prebuild/zig.mjs):
//   prebuilds/linux-x64/kernel-lock.glibc.node    glibc ≥ 2.17
//   prebuilds/linux-arm64/kernel-lock.glibc.node  glibc ≥ 2.17
//   prebuilds/linux-x64/kernel-lock.musl.node     musl (Alpine)
//   prebuilds/linux-arm64/kernel-lock.musl.node   musl (Alpine)
// Each is linked with LLVM's C++ runtime inside it (nothing asked of the
// system's libstdc++), exports only the N-API entry points, and must pass the
// gate (scripts/check-prebuilds.mjs) before it replaces prebuilds/. One build
// serves every Node with N-API 8 (20, 22, 24 and later). Run by `npm pack`
// (prepack) and by test/package/load.test.ts.
//
// Usage: node scripts/build-prebuilds.mjs [--out DIR] [--target ID,...]
//   --out     package directory whose prebuilds/ is replaced (default: this checkout)
//   --target  build only these (linux-x64-glibc, linux-arm64-glibc, linux-x64-musl, linux-arm64-musl)
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkPackage } from './check-prebuilds.mjs';
import { nodeHeaders } from './lib/node-headers.mjs';
import { run } from './prebuild/cache.mjs';
import { EXPORTS, TARGETS } from './prebuild/targets.mjs';
import { zig } from './prebuild/zig.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);

/** Sources, defines and C++ flags from binding.gyp, so the prebuilds and `node-gyp rebuild` compile the same thing. */
function bindingGyp() {
  const gyp = JSON.parse(fs.readFileSync(path.join(root, 'binding.gyp'), 'utf8'));
  const addon = gyp.targets.find((t) => t.target_name === 'kernel_lock');
  if (!addon) throw new Error('binding.gyp has no kernel_lock target');
  return {
    sources: addon.sources.map((source) => path.join(root, source)),
    defines: addon.defines ?? [],
    cflags: (addon.cflags_cc ?? []).filter((flag) => !flag.startsWith('-std=')),
  };
}

function options() {
  const args = process.argv.slice(2);
  const value = (name) => {
    const index = args.indexOf(name);
    return index >= 0 ? args[index + 1] : undefined;
  };
  const wanted = value('--target')?.split(',');
  const targets = wanted ? TARGETS.filter((t) => wanted.includes(t.id)) : TARGETS;
  if (wanted && targets.length !== wanted.length) {
    throw new Error(`unknown --target in ${wanted.join(',')}; known: ${TARGETS.map((t) => t.id).join(', ')}`);
  }
  return { out: path.resolve(value('--out') ?? root), targets };
}

function compile(compiler, gyp, target, output, work) {
  // Exports only the N-API entry points: the static libc++ inside must not
  // interpose on (or be interposed by) the libstdc++ that Node itself loads.
  const exportsMap = path.join(work, 'exports.map');
  fs.writeFileSync(exportsMap, `{\n  global: ${EXPORTS.join('; ')};\n  local: *;\n};\n`);
  const args = [
    'c++',
    '-target',
    target.zig,
    '-mcpu=baseline', // the architecture's base ISA, never the build machine's
    '-std=c++17',
    '-O2',
    '-g0',
    '-fPIC',
    '-shared',
    '-ffunction-sections',
    '-fdata-sections',
    '-Wl,--gc-sections',
    `-Wl,--version-script=${exportsMap}`,
    '-s',
    ...gyp.cflags,
    ...gyp.defines.map((define) => `-D${define}`),
    '-DBUILDING_NODE_EXTENSION',
    `-I${require('node-addon-api').include_dir}`,
    `-I${nodeHeaders()}`,
    ...gyp.sources,
    '-o',
    output,
  ];
  const result = spawnSync(compiler.bin, args, { env: compiler.env, encoding: 'utf8' });
  // zig's own libc/libc++ builds (first use only) print "argument unused" noise; keep real diagnostics.
  const diagnostics = `${result.stdout}${result.stderr}`
    .split('\n')
    .filter((line) => line.trim() && !/argument unused during compilation/.test(line))
    .join('\n');
  if (result.status !== 0) throw new Error(`zig c++ for ${target.id} failed (exit ${result.status}):\n${diagnostics}`);
  if (diagnostics) console.error(diagnostics);
}

// A binary the running Node can load must load here before it ships.
function checkLoads(file) {
  run(process.execPath, [
    '-e',
    'const b = require(process.argv[1]); if (typeof b.acquire !== "function") throw new Error("no acquire()")',
    file,
  ]);
}

function main() {
  const { out, targets } = options();
  const gyp = bindingGyp();
  const compiler = zig();
  fs.mkdirSync(out, { recursive: true });
  const stage = fs.mkdtempSync(path.join(out, '.prebuilds-'));
  try {
    for (const target of targets) {
      const started = Date.now();
      const file = path.join(stage, ...target.file.split('/'));
      fs.mkdirSync(path.dirname(file), { recursive: true });
      compile(compiler, gyp, target, file, stage);
      const seconds = ((Date.now() - started) / 1000).toFixed(1);
      console.log(
        `built ${target.file} (${target.zig}, ${(fs.statSync(file).size / 1024).toFixed(0)} KiB, ${seconds} s)`,
      );
      if (target.arch === process.arch && target.libc === 'glibc' && process.platform === 'linux') checkLoads(file);
    }
    fs.rmSync(path.join(stage, 'exports.map'));
    const broken = checkPackage(stage, { complete: targets.length === TARGETS.length }).filter(
      (entry) => entry.violations.length > 0,
    );
    if (broken.length > 0) {
      const lines = broken.flatMap((entry) => [entry.file, ...entry.violations.map((v) => `  ${v}`)]);
      throw new Error(`the gate (scripts/check-prebuilds.mjs) refuses:\n${lines.join('\n')}`);
    }
    // Replace prebuilds/ as a whole, so no binary of an earlier build lingers.
    const previous = path.join(out, 'prebuilds');
    const retired = `${previous}.old-${process.pid}`;
    if (fs.existsSync(previous)) fs.renameSync(previous, retired);
    fs.renameSync(path.join(stage, 'prebuilds'), previous);
    fs.rmSync(retired, { recursive: true, force: true });
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

try {
  main();
} catch (error) {
  console.error(`scripts/build-prebuilds.mjs: ${error.message}`);
  process.exitCode = 1;
}
