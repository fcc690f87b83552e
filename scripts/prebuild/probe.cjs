// Runs inside each system of the load matrix (scripts/prebuild/load-matrix.mjs)
// and prints one JSON line saying what it saw. Plain ES2018 CommonJS: it also
// runs on Debian 11's own Node 12.
//
//   node probe.cjs binary <file.node>
//     loads the binary alone (dlopen, module init) and reads its surface.
//   node probe.cjs library <package dir> <scratch dir>
//     loads kernel-lock from the package (PREBUILDS_ONLY=1: the prebuild, never
//     a local build) and runs real locks through it: a flock hand-off between
//     two descriptors where the holder's release unlinks the file under the
//     waiter, whose retry must see lstat() fail with ENOENT (errno is read back
//     correctly only if the binary's stat family and glibc agree on errno: the
//     bug a zig 0.11 build had on glibc < 2.33), and an OFD lock conflict.
'use strict';
// biome-ignore lint/style/useNodejsImportProtocol: Node 12 has no node: specifiers
const path = require('path');

function glibcVersion() {
  if (!process.report) return null;
  return process.report.getReport().header.glibcVersionRuntime || null;
}

function runtime() {
  return { node: process.version, arch: process.arch, napi: Number(process.versions.napi), glibc: glibcVersion() };
}

function probeBinary(file) {
  const binding = require(path.resolve(file));
  return Object.assign(runtime(), {
    loaded: typeof binding.acquire === 'function',
    ofdSupported: binding.ofdSupported,
    interruptSignal: binding.interruptSignal,
  });
}

async function probeLibrary(dir, scratch) {
  const kernelLock = require(path.join(dir, 'dist', 'index.cjs'));
  const binary = require(path.join(dir, 'node_modules', 'node-gyp-build')).resolve(dir);
  const file = path.join(scratch, 'hand-off.lock');
  const steps = [];

  const holder = kernelLock.lockSync(file, { owner: 'load probe', removeOnRelease: true });
  steps.push(kernelLock.tryLockSync(file) === null ? 'busy while held' : 'NOT EXCLUSIVE');
  const waiter = kernelLock.lock(file, { owner: 'load probe waiter', timeout: 30000, removeOnRelease: true });
  await new Promise((resolve) => setTimeout(resolve, 200));
  await holder.release(); // unlinks: the waiter wakes on a removed inode and starts over
  const next = await waiter;
  steps.push('handed off after unlink');
  await next.release();

  const ofdFile = path.join(scratch, 'ofd.lock');
  const ofd = kernelLock.lockSync(ofdFile, { kind: 'ofd' });
  steps.push(kernelLock.tryLockSync(ofdFile, { kind: 'ofd' }) === null ? 'ofd busy while held' : 'OFD NOT EXCLUSIVE');
  ofd.releaseSync();
  const again = kernelLock.tryLockSync(ofdFile, { kind: 'ofd' });
  steps.push(again ? 'ofd free after release' : 'OFD STILL HELD');
  if (again) again.releaseSync();

  return Object.assign(runtime(), { binary: path.relative(dir, binary), steps: steps });
}

async function main() {
  const mode = process.argv[2];
  const result =
    mode === 'binary' ? probeBinary(process.argv[3]) : await probeLibrary(process.argv[3], process.argv[4]);
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

main().catch((error) => {
  process.stdout.write(`${JSON.stringify({ error: String(error instanceof Error ? error.stack : error) })}\n`);
  process.exitCode = 1;
});
