#!/usr/bin/env node
// Builds the prebuilt N-API binary that ships in the tarball:
//   prebuilds/<platform>-<arch>/kernel-lock.<libc>.node
// with `prebuildify --napi --strip --tag-libc` (one binary serves every Node
// version with N-API 8: Node 20, 22 and 24). Run by `npm pack` (prepack).
//
// WHY a staging directory: prebuildify runs `node-gyp rebuild` in its working
// directory, which would delete and rewrite build/Release. Tests (and other
// processes) load build/Release while `npm pack` runs, so the build happens in
// a private copy of binding.gyp + native/ and only the finished binary is moved
// into prebuilds/, atomically (written next to its final name, then renamed).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function main() {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'kernel-lock-prebuild-'));
  try {
    for (const entry of ['package.json', 'binding.gyp', 'native']) {
      fs.cpSync(path.join(root, entry), path.join(stage, entry), { recursive: true });
    }
    // binding.gyp asks node-addon-api for its include dir; resolve it from here.
    fs.symlinkSync(path.join(root, 'node_modules'), path.join(stage, 'node_modules'), 'dir');

    const bin = path.join(root, 'node_modules', 'prebuildify', 'bin.js');
    // --target: build against the running Node's headers (prebuildify would
    // otherwise pick the newest Node it knows of); with --napi the binary is
    // named and loaded by N-API version, not by Node ABI.
    const args = [bin, '--napi', '--strip', '--tag-libc', `--target=node@${process.versions.node}`];
    const built = spawnSync(process.execPath, args, {
      cwd: stage,
      stdio: 'inherit',
      env: { ...process.env, ...localHeaders(), ...nodeGyp() },
    });
    if (built.status !== 0) {
      throw new Error(`prebuildify failed (exit ${built.status ?? built.signal}); see the compiler output above.`);
    }

    const stagedDir = path.join(stage, 'prebuilds');
    for (const tuple of fs.readdirSync(stagedDir)) {
      const targetDir = path.join(root, 'prebuilds', tuple);
      fs.mkdirSync(targetDir, { recursive: true });
      for (const file of fs.readdirSync(path.join(stagedDir, tuple))) {
        checkLoads(path.join(stagedDir, tuple, file));
        const finalPath = path.join(targetDir, file);
        const partial = `${finalPath}.${process.pid}.partial`;
        fs.copyFileSync(path.join(stagedDir, tuple, file), partial);
        fs.renameSync(partial, finalPath);
        const size = fs.statSync(finalPath).size;
        console.log(`prebuilt ${path.relative(root, finalPath)} (${(size / 1024).toFixed(0)} KiB)`);
      }
    }
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

// node-gyp downloads Node's headers unless told where they are. Official Node
// builds and Docker images ship them next to the binary (<prefix>/include/node),
// so point node-gyp there: the build then needs no network (CI, offline packs).
function localHeaders() {
  if (process.env.npm_config_nodedir) return {};
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  return fs.existsSync(path.join(prefix, 'include', 'node', 'common.gypi')) ? { npm_config_nodedir: prefix } : {};
}

// Under `npm run`, npm puts its bundled node-gyp on PATH; run directly, point
// prebuildify at that same copy.
function nodeGyp() {
  if (process.env.PREBUILD_NODE_GYP) return {};
  const candidates = [
    process.env.npm_config_node_gyp,
    path.resolve(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp'),
  ].map((dir) => dir && (dir.endsWith('.js') ? dir : path.join(dir, 'bin', 'node-gyp.js')));
  const found = candidates.find((file) => file && fs.existsSync(file));
  return found ? { PREBUILD_NODE_GYP: found } : {};
}

// A binary that cannot be loaded must never reach prebuilds/.
function checkLoads(file) {
  const probe = spawnSync(
    process.execPath,
    ['-e', 'const b = require(process.argv[1]); if (typeof b.acquire !== "function") process.exit(2)', file],
    { stdio: 'inherit' },
  );
  if (probe.status !== 0) throw new Error(`prebuilt binary ${file} does not load in Node ${process.version}`);
}

try {
  main();
} catch (error) {
  console.error(`scripts/prebuildify.mjs: ${error.message}`);
  process.exitCode = 1;
}
