// Stand-in for the legacy OpenClaw session lock, used only when the real
// baseline (src/demo/legacy-marker.ts) is not in the tree: an O_EXCL marker
// file holding {pid, createdAt, starttime}, polled with a 50 ms..1 s backoff,
// reclaimed when the recorded pid is dead (or was recycled: other starttime).

import { readFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';

function startTime(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
  } catch {
    return null;
  }
}

const ownStartTime = startTime('self');

function alive(pid, starttime) {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return error.code === 'EPERM';
  }
  return starttime == null || startTime(pid) === starttime;
}

async function tryCreate(lockPath) {
  const handle = await fs.open(lockPath, 'wx');
  try {
    const marker = { pid: process.pid, createdAt: new Date().toISOString(), starttime: ownStartTime };
    await handle.writeFile(JSON.stringify(marker));
  } finally {
    await handle.close();
  }
}

/** Acquires the marker lock, polling until `timeoutMs`; resolves to {release()}. */
export async function acquireLegacyLock({ lockPath, timeoutMs }) {
  const deadline = Date.now() + timeoutMs;
  let delay = 50;
  for (;;) {
    try {
      await tryCreate(lockPath);
      return { release: () => fs.rm(lockPath, { force: true }) };
    } catch (error) {
      if (error.code !== 'EEXIST') throw error;
    }
    let marker = null;
    try {
      marker = JSON.parse(await fs.readFile(lockPath, 'utf8'));
    } catch {
      // Vanished or half-written: just retry.
    }
    if (marker && typeof marker.pid === 'number' && !alive(marker.pid, marker.starttime)) {
      await fs.rm(lockPath, { force: true });
      continue;
    }
    if (Date.now() >= deadline) {
      throw new Error(`session file locked (timeout ${timeoutMs}ms): pid=${marker?.pid} ${lockPath}`);
    }
    await sleep(delay);
    delay = Math.min(delay * 2, 1000);
  }
}
