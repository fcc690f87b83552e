// How a live holder learns, without polling, that it was superseded: a
// takeover rewrites the token slot, and the kernel reports every write to the
// file through inotify (fs.watch). The event only prompts a re-read of the
// slot; the slot is the truth. The watch is placed on the inode behind the
// holder's own descriptor (/proc/self/fd/N on Linux), so a file replaced at
// the path is seen as a change to our inode (link count) rather than missed.
//
// Kernel locks cannot carry this notice: a lock wait wakes only when a lock
// is released, and a waiter that might later take over holds nothing the
// holder could already be sleeping on. Where inotify is unavailable (the
// watch limit is exhausted, or a file system that does not report remote
// writes, like NFS), the signal fires only when the holder itself looks:
// assertCurrent(), write() and writeSync() always read the slot, so fencing
// never depends on the notice.
import { type FSWatcher, watch } from 'node:fs';

/** Starts watching the file behind `fd`; `onEvent` runs on every change. Returns null when no watch could be set. */
export function watchLeaseFile(fd: number, path: string | Buffer, onEvent: () => void): FSWatcher | null {
  const targets: (string | Buffer)[] = process.platform === 'linux' ? [`/proc/self/fd/${fd}`, path] : [path];
  for (const target of targets) {
    try {
      // Not persistent: a held lease must not keep the process alive.
      const watcher = watch(target, { persistent: false }, onEvent);
      watcher.on('error', () => {
        watcher.close();
        onEvent();
      });
      return watcher;
    } catch {
      // Try the next target; with none, the holder learns on its next check.
    }
  }
  return null;
}
