// What the harness reads from outside the runtime: the session lock file,
// the processes of an invocation's process group, and whether the session
// transcript forked (two entries continuing the same parent: two writers).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The `*.jsonl.lock` in a sessions directory, if there is one. */
export function lockFileIn(sessionsDir: string): string | null {
  try {
    const name = readdirSync(sessionsDir).find((n) => n.endsWith('.jsonl.lock'));
    return name === undefined ? null : path.join(sessionsDir, name);
  } catch {
    return null;
  }
}

/** Pids (in this pid namespace) of the live processes in process group `pgid`. */
export function processGroup(pgid: number): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'latin1');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) === pgid && fields[0] !== 'Z') pids.push(Number(name));
    } catch {
      // gone meanwhile
    }
  }
  return pids.sort((a, b) => a - b);
}

/**
 * Entries of the session transcripts that share their parent with another
 * entry. A root (parentId null) counts as a parent too: a second writer that
 * started the session in memory before the first wrote it appends a second
 * header and a second root, which is how the runtime's transcript forks.
 */
export function forkedEntries(sessionsDir: string): number {
  let forked = 0;
  let names: string[] = [];
  try {
    names = readdirSync(sessionsDir).filter((name) => /^[^.]+\.jsonl$/.test(name));
  } catch {
    return 0;
  }
  for (const name of names) {
    const children = new Map<string, number>();
    for (const line of readFileSync(path.join(sessionsDir, name), 'utf8').split('\n')) {
      try {
        const entry = JSON.parse(line) as { parentId?: unknown };
        if (!('parentId' in entry)) continue; // the session header
        const parent = typeof entry.parentId === 'string' ? entry.parentId : '(root)';
        children.set(parent, (children.get(parent) ?? 0) + 1);
      } catch {
        // a torn or empty line: not an entry
      }
    }
    for (const count of children.values()) if (count > 1) forked += count;
  }
  return forked;
}
