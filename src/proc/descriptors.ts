// Finding the processes that actually hold a lock through their descriptors.
// /proc/locks names the process that TOOK a lock; for an OFD lock it names
// nobody (-1), and a flock lock outlives its taker when the descriptor was
// inherited (flock(1), `kernel-lock run`, a fork). /proc/<pid>/fdinfo/<fd>
// lists, per descriptor, the locks held through it ("lock:" lines in the
// /proc/locks format), which names the real holders. Reading every
// descriptor of every process is costly, so this runs only when needed and
// stops after a bounded number of reads.
import { readdirSync, readFileSync } from 'node:fs';
import { type FileKey, type LockKind, parseProcLocksLine } from './proc-locks.js';

/** A process holding a lock through one of its descriptors. */
export interface DescriptorHolder {
  pid: number;
  fd: number;
  kind: LockKind;
  /** First byte of the lock, for fcntl locks (a lease file carries one lock per token); undefined for flock. */
  start?: number;
}

/** Upper bound on fdinfo files read per lookup: enough for a busy host, bounded for a huge one. */
export const MAX_FDINFO_READS = 20_000;

/**
 * Scans /proc/<pid>/fdinfo for descriptors that carry a lock on any of
 * `keys`. Returns the holders per key and whether the scan was cut short.
 */
export function findDescriptorHolders(keys: ReadonlySet<FileKey>): {
  holders: Map<FileKey, DescriptorHolder[]>;
  complete: boolean;
} {
  const holders = new Map<FileKey, DescriptorHolder[]>();
  if (keys.size === 0 || process.platform !== 'linux') return { holders, complete: keys.size === 0 };
  let reads = 0;
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return { holders, complete: false };
  }
  for (const pidText of pids) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pidText}/fdinfo`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fdText of fds) {
      if (++reads > MAX_FDINFO_READS) return { holders, complete: false };
      let info: string;
      try {
        info = readFileSync(`/proc/${pidText}/fdinfo/${fdText}`, 'latin1');
      } catch {
        continue;
      }
      if (!info.includes('lock:')) continue;
      for (const line of info.split('\n')) {
        if (!line.startsWith('lock:')) continue;
        const parsed = parseProcLocksLine(line.slice(5));
        if (parsed === null || parsed.lock.blocked || !keys.has(parsed.key)) continue;
        const list = holders.get(parsed.key) ?? [];
        const pid = Number(pidText);
        // One entry per process and lock: a forked child shares the parent's descriptors.
        const { kind, range } = parsed.lock;
        const start = range?.start;
        if (!list.some((h) => h.pid === pid && h.kind === kind && h.start === start)) {
          list.push(start === undefined ? { pid, fd: Number(fdText), kind } : { pid, fd: Number(fdText), kind, start });
        }
        holders.set(parsed.key, list);
      }
    }
  }
  return { holders, complete: true };
}
