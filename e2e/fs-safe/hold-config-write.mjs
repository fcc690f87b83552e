// Preload for a real `openclaw config set …`: when the runtime commits the
// config file (rename onto FS_SAFE_HOLD_TARGET, which happens only inside its
// config write lock), announce "HOLDING <pid>" on stderr and pause there for
// FS_SAFE_HOLD_MS (default: forever), then say "RESUMED <pid>" and let the
// write go on. FS_SAFE_HOLD_MS=0 only announces (a waiter's commit time).
// Exploration only: it delays the runtime, it changes no lock.
import fs from 'node:fs';
import { syncBuiltinESMExports } from 'node:module';

const target = process.env.FS_SAFE_HOLD_TARGET;
const holdMs = Number(process.env.FS_SAFE_HOLD_MS ?? 'Infinity');
let held = false;
function announce(how) {
  held = true;
  fs.writeSync(2, `HOLDING ${process.pid} ${how} ${Date.now()}\n`);
}
function resumed() {
  fs.writeSync(2, `RESUMED ${process.pid} ${Date.now()}\n`);
}
const pause = () =>
  new Promise((resolve) => {
    if (Number.isFinite(holdMs))
      setTimeout(() => {
        resumed();
        resolve();
      }, holdMs);
  });
const hit = (dest) => target && !held && String(dest) === target;
const renameAsync = fs.promises.rename;
fs.promises.rename = async function (from, to) {
  if (hit(to)) {
    announce('rename');
    await pause();
  }
  return renameAsync.call(this, from, to);
};
const renameSync = fs.renameSync;
fs.renameSync = function (from, to) {
  if (hit(to)) {
    announce('renameSync');
    if (Number.isFinite(holdMs)) {
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, holdMs);
      resumed();
    } else Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0);
  }
  return renameSync.call(this, from, to);
};
// The config write lock is taken right after `mkdir(dirname(config), { recursive, mode: 0o700 })`
// (src/config/write-lock.ts): announce it, so a waiter's arrival at the lock is known.
const mkdirAsync = fs.promises.mkdir;
fs.promises.mkdir = async function (dir, options) {
  const result = await mkdirAsync.call(this, dir, options);
  if (target && String(dir) === target.slice(0, target.lastIndexOf('/')) && options?.mode === 0o700) {
    fs.writeSync(2, `LOCKING ${process.pid} mkdir ${Date.now()}\n`);
  }
  return result;
};
syncBuiltinESMExports();
